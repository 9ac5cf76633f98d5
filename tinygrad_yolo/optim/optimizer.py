"""Optimizer base: parameter groups, per-parameter state, zero_grad, state dicts.

Layout as in PyTorch: ``param_groups`` is a list of dicts, each with its own
hyper-parameters (``lr``, ...) and ``params``; ``state`` maps a parameter to a
dict of arrays (momentum buffers, Adam moments) and counters. ``state_dict()``
refers to parameters by their position across all groups, so a resumed run
needs only the same model architecture, not the same Python objects.
"""
import numpy as np

from .. import backend
from ..tensor import Tensor
from ..tensor_methods import zero_grads


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        for g in groups:
            self.add_param_group(g)
        self.state = {}  # id(param) -> dict

    def add_param_group(self, group):
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer params must be Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("optimizer can only update leaf tensors (parameters), got one "
                                 "made by an op")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("a parameter appears in more than one parameter group")
        group["params"] = params
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        zero_grads((p for g in self.param_groups for p in g["params"]), set_to_none)

    def step(self):
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    def _params_with_grad(self, group):
        for p in group["params"]:
            if p.grad is not None:
                yield p, self.state.setdefault(id(p), {})

    # ---- state dicts ----------------------------------------------------------
    def state_dict(self):
        """{'state': {index: {name: array or number}},
            'param_groups': [{hyper-params, 'params': [index]}]}
        with host NumPy copies of every array."""
        index, groups, i = {}, [], 0
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index[id(p)] = i
                ids.append(i)
                i += 1
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {}
        for pid, s in self.state.items():
            if pid in index and s:
                state[index[pid]] = {k: (backend.to_numpy(v).copy() if hasattr(v, "shape") else v)
                                     for k, v in s.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and per-parameter state (copied, cast to each
        parameter's dtype and moved to its device); errors name what doesn't fit."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"optimizer state has {len(groups)} parameter groups, this optimizer "
                             f"has {len(self.param_groups)}")
        params = []
        for k, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"parameter group {k}: optimizer state has {len(saved['params'])} "
                                 f"parameters, this optimizer has {len(own['params'])}")
            params.extend(zip(saved["params"], own["params"]))
        by_index = dict(params)
        new_state = {}
        for key, s in state_dict["state"].items():
            idx = int(key)
            if idx not in by_index:
                raise ValueError(f"optimizer state refers to parameter {idx}, which no group "
                                 "contains")
            p = by_index[idx]
            restored = {}
            for name, v in s.items():
                if hasattr(v, "shape") and np.ndim(v) > 0:
                    if tuple(v.shape) != tuple(p.shape):
                        raise ValueError(f"optimizer state '{name}' of parameter {idx} has shape "
                                         f"{tuple(v.shape)}, but the parameter has shape "
                                         f"{tuple(p.shape)}")
                    xp = backend.array_module(p.data)
                    v = xp.array(backend.to_device(np.asarray(v), p.device), dtype=p.dtype,
                                 copy=True)
                elif hasattr(v, "shape"):  # 0-d array from a checkpoint -> Python number
                    v = v.item()
                restored[name] = v
            new_state[id(p)] = restored
        for saved, own in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    own[k] = v.item() if hasattr(v, "item") and np.ndim(v) == 0 else v
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"
