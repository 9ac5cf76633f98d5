"""Module: the base of every layer and model.

As in PyTorch, assigning a Parameter, a Module or (through ``register_buffer``)
a buffer to an attribute registers it, so the tree of submodules can be walked
for parameters, buffers, state dicts, device moves and train/eval switches.
Names are dotted paths (``layer1.0.conv1.weight``), which keeps checkpoints
interchangeable with PyTorch's key layout.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend
from ..function import no_grad
from ..saved import modifying
from ..tensor import Tensor
from ..tensor_methods import zero_grads
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class StateDictError(KeyError):
    """A state dict that doesn't fit the module (missing, unexpected or mis-shaped keys)."""

    def __str__(self):  # KeyError would print the repr of the message, quotes and all
        return str(self.args[0])


class _HookHandle:
    _next_id = 0

    def __init__(self, hooks):
        self.hooks, self.id = hooks, _HookHandle._next_id
        _HookHandle._next_id += 1

    def remove(self):
        self.hooks.pop(self.id, None)


class Module:
    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these dicts to exist already.
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, out)
            if replaced is not None:
                out = replaced
        if self._backward_hooks:
            out = self._hook_output(args, out)
        return out

    def register_forward_hook(self, hook):
        """``hook(module, inputs, output)`` runs after every forward; a non-None return
        replaces the output. Returns a handle whose ``remove()`` unregisters it."""
        handle = _HookHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def register_full_backward_hook(self, hook):
        """``hook(module, grad_output)`` runs during backward with the gradient of the loss
        w.r.t. this module's output (a Tensor; once per forward call whose output the loss
        used); a non-None return replaces that gradient before it flows into the module.
        It is a Tensor hook (``register_hook``) put on each forward's output, so it sees
        outputs made while it is registered. Returns a handle whose ``remove()`` unregisters it."""
        handle = _HookHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        return handle

    def _hook_output(self, inputs, out):
        if not isinstance(out, Tensor):
            raise TypeError(f"{type(self).__name__} has a backward hook, which needs forward() to "
                            f"return a Tensor, got {type(out).__name__}")
        if not out.requires_grad:  # no graph (no_grad, or no input needs a gradient)
            return out
        if out.is_leaf or any(out is x for x in inputs):
            # A pass-through output (Identity returns its input) gets a node of its own: a hook
            # on the input itself would also see the gradient of the input's other uses.
            out = out.reshape(out.shape)

        def run_hooks(grad):
            replaced = None
            for hook in list(self._backward_hooks.values()):
                r = hook(self, grad if replaced is None else replaced)
                if r is not None:
                    replaced = r
            return replaced

        out.register_hook(run_hooks)
        return out

    # ---- registration ---------------------------------------------------------
    def _check_init(self):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 "before assigning parameters, buffers or submodules")

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._check_init()
            self._remove_from(name, keep="_parameters")
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._check_init()
            self._remove_from(name, keep="_modules")
            self._modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter {name!r} of "
                                f"{type(self).__name__} (expected nn.Parameter or None)")
            self._parameters[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            self._buffers[name] = _as_buffer(name, value)
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to submodule {name!r} of "
                                f"{type(self).__name__} (expected nn.Module or None)")
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def _remove_from(self, name, keep):
        for d in ("_parameters", "_buffers", "_modules"):
            if d != keep:
                self.__dict__[d].pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):  # only reached when normal lookup fails
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(store, ()):
                del self.__dict__[store][name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected nn.Parameter or None, "
                            f"got {type(param).__name__}")
        self._check_init()
        self._remove_from(name, keep="_parameters")
        self._parameters[name] = param

    def register_buffer(self, name, value, persistent=True):
        """A non-learnable array that belongs to the module's state (BN running
        statistics): moved by ``to(device)``, saved by ``state_dict()`` unless
        ``persistent=False``. Stored as a Tensor without gradient."""
        self._check_init()
        if "." in name or not name:
            raise KeyError(f"buffer name must be non-empty and contain no '.', got {name!r}")
        self._remove_from(name, keep="_buffers")
        self._buffers[name] = _as_buffer(name, value)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(
                f"add_module({name!r}): expected nn.Module, got {type(module).__name__}")
        self._check_init()
        self._remove_from(name, keep="_modules")
        self._modules[name] = module

    # ---- walking the tree -----------------------------------------------------
    def named_modules(self, prefix="", memo=None):
        """(dotted name, module) for this module and every descendant, each once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, store, recurse):
        seen = set()  # a shared parameter is listed once, under its first name
        mods = self.named_modules() if recurse else [("", self)]
        for prefix, m in mods:
            for name, t in m.__dict__[store].items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{prefix}.{name}" if prefix else name), t

    def named_parameters(self, recurse=True):
        yield from self._named_members("_parameters", recurse)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse):
            yield p

    def named_buffers(self, recurse=True):
        yield from self._named_members("_buffers", recurse)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse):
            yield b

    def apply(self, fn):
        """Call ``fn(module)`` on every submodule (children first) and on self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def num_parameters(self, trainable_only=False):
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ---- modes, devices, dtypes, gradients ------------------------------------
    def train(self, mode=True):
        """Training mode (BatchNorm uses batch statistics, Dropout drops); returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode (BatchNorm uses running statistics, Dropout is the identity)."""
        return self.train(False)

    def to(self, device):
        """Move every parameter, gradient and buffer to ``device`` in place; returns self.
        The Parameter objects stay the same, so an optimizer built before still works."""
        backend.check_device(device)
        for t in self._all_tensors():
            t.data = backend.to_device(t.data, device)
            if t.grad is not None:
                t.grad.data = backend.to_device(t.grad.data, device)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def to_dtype(self, dtype):
        """Cast floating-point parameters and buffers in place (integer buffers such as
        ``num_batches_tracked`` keep their type); gradients are dropped. Returns self."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"to_dtype needs a floating-point dtype, got {dtype}")
        for t in self._all_tensors():
            if t.dtype.kind == "f":
                t.data = t.data.astype(dtype)
                t.grad = None
        return self

    def double(self):
        return self.to_dtype(np.float64)

    def float(self):
        return self.to_dtype(np.float32)

    def _all_tensors(self):
        yield from self.parameters()
        yield from self.buffers()

    def zero_grad(self, set_to_none=True):
        zero_grads(self.parameters(), set_to_none)

    # ---- state dicts ----------------------------------------------------------
    def state_dict(self):
        """Parameters and persistent buffers as host NumPy copies, by dotted name."""
        out = OrderedDict()
        for prefix, m in self.named_modules():
            pre = f"{prefix}." if prefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    out[pre + name] = p.numpy()
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    out[pre + name] = b.numpy()
        return out

    def _state_tensors(self):
        out = OrderedDict()
        for prefix, m in self.named_modules():
            pre = f"{prefix}." if prefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    out[pre + name] = p
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    out[pre + name] = b
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (or Tensors) into the parameters and buffers in place.

        Shapes must always match. With ``strict`` every key must match too;
        otherwise missing and unexpected keys are returned, not raised. Values are
        cast to each parameter's dtype and moved to its device; complex, string or
        object values are refused (a cast would silently drop their meaning).
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(
                f"load_state_dict expects a dict of arrays, got {type(state_dict).__name__}")
        own = self._state_tensors()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = []
        for k, t in own.items():
            if k in state_dict:
                v = state_dict[k]
                shape = tuple(v.shape) if hasattr(v, "shape") else np.shape(v)
                kind = v.dtype.kind if hasattr(v, "dtype") else np.asarray(v).dtype.kind
                if shape != tuple(t.shape):
                    mismatched.append(f"{k}: checkpoint {shape} vs model {tuple(t.shape)}")
                elif kind not in "biuf":
                    # complex, strings or objects can't become a real parameter without losing data
                    mismatched.append(f"{k}: checkpoint dtype {getattr(v, 'dtype', kind)} can't "
                                      f"load into {t.dtype}")
        problems = []
        if mismatched:
            problems.append("shape mismatch for " + "; ".join(mismatched))
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise StateDictError(f"error loading state_dict into {type(self).__name__}: "
                                 + " | ".join(problems))
        with no_grad():
            for k, t in own.items():
                if k in state_dict:
                    v = state_dict[k]
                    v = v.data if isinstance(v, Tensor) else v
                    xp = backend.array_module(t.data)
                    v = backend.to_device(v, t.device) if hasattr(v, "shape") else v
                    with modifying(t.data):
                        t.data[...] = xp.asarray(v, dtype=t.dtype)
        return IncompatibleKeys(missing, unexpected)

    # ---- printing -------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}(" + (f"{extra}" if extra else "")
        return head + "\n" + "\n".join(lines) + "\n)"

    def __dir__(self):
        own = set(self._parameters) | set(self._buffers) | set(self._modules)
        return sorted(set(super().__dir__()) | own)


def _as_buffer(name, value):
    if value is None:
        return None
    if isinstance(value, Tensor):
        if value.requires_grad:
            raise TypeError(f"buffer {name!r} must not require grad "
                            f"(use nn.Parameter for learnable values)")
        return value
    if not (hasattr(value, "__array_interface__") or backend.is_cuda_array(value)):
        value = np.asarray(value)
    return Tensor(value)
