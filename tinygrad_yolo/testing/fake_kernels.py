"""fake_cupy's custom kernels: cp.RawModule, cp.ElementwiseKernel and cp.ReductionKernel.

A RawModule kernel runs the NumPy emulation registered under its name in
kernel_emulations.RAW_KERNELS; ElementwiseKernel / ReductionKernel bodies simple enough to be
Python expressions ("y = x * s + b") are evaluated with NumPy. Each launch counts as one call.
"""
import re

import numpy as np

from .counting import counter
from .fake_ndarray import ndarray, unwrap
from .kernel_emulations import RAW_KERNELS


def _refuse_host_arrays(what, args):
    for v in args:
        if isinstance(v, np.ndarray):
            raise TypeError(f"{what}: a NumPy array passed to a device kernel")


class RawKernel:
    def __init__(self, name):
        self.name = name
        self.base = name.split("<")[0]

    def __call__(self, grid, block, args, shared_mem=0, **kwargs):
        _refuse_host_arrays(self.name, args)
        emulate = RAW_KERNELS.get(self.base)
        if emulate is None:
            raise NotImplementedError(f"fake_cupy: no NumPy emulation registered for kernel "
                                      f"{self.base!r}")
        if getattr(emulate, "with_launch", False):  # e.g. the host-compiled kernel itself (tests)
            emulate(grid, block, *unwrap(list(args)))
        else:
            emulate(*unwrap(list(args)))
        counter.call("raw", self.base)


class RawModule:
    def __init__(self, code=None, path=None, options=(), name_expressions=None, **kwargs):
        self.code, self.options, self.name_expressions = code, options, name_expressions

    def get_function(self, name):
        return RawKernel(name)


def _params(spec):
    """'T x, raw T w, float32 s' -> ['x', 'w', 's']"""
    return [p.split()[-1] for p in spec.split(",") if p.strip()]


def _python(expr):
    expr = expr.strip().rstrip(";")
    return re.sub(r"\(\s*(?:float|double|T)\s*\)", "", expr)


def _fresh(value, dtype):
    r = np.array(value, dtype=dtype)
    counter.alloc(r)
    return ndarray.view_of(r)


class ElementwiseKernel:
    def __init__(self, in_params, out_params, operation, name="kernel", **kwargs):
        self.ins, self.outs = _params(in_params), _params(out_params)
        self.operation, self.name = operation, name

    def __call__(self, *args, **kwargs):
        arrays = [unwrap(a) for a in args[:len(self.ins)]]
        _refuse_host_arrays(self.name, args)
        env = dict(zip(self.ins, arrays))
        shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
        dtype = next(a.dtype for a in arrays if isinstance(a, np.ndarray))
        body = "\n".join(_python(s) for s in self.operation.split(";") if s.strip())
        exec(compile(body, self.name, "exec"), {"np": np}, env)
        outs = []
        for i, o in enumerate(self.outs):
            given = args[len(self.ins) + i] if len(args) > len(self.ins) + i else None
            value = np.broadcast_to(np.asarray(env[o], dtype=dtype), shape)
            if given is not None:
                unwrap(given)[...] = value
                outs.append(given)
            else:
                outs.append(_fresh(value, dtype))
        counter.call("elementwise", self.name)
        return outs[0] if len(outs) == 1 else tuple(outs)


class ReductionKernel:
    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity,
                 name="reduce", **kwargs):
        if reduce_expr.replace(" ", "") not in ("a+b",):
            raise NotImplementedError(f"fake_cupy: ReductionKernel {name}: only the sum 'a + b' "
                                      "is emulated")
        self.ins, self.map_expr, self.name = _params(in_params), map_expr, name

    def __call__(self, *args, axis=None, keepdims=False, **kwargs):
        arrays = [unwrap(a) for a in args[:len(self.ins)]]
        mapped = eval(_python(self.map_expr), {"np": np}, dict(zip(self.ins, arrays)))
        r = np.asarray(mapped.sum(axis=axis, keepdims=keepdims), dtype=arrays[0].dtype)
        counter.alloc(r)
        counter.call("reduction", self.name)
        return ndarray.view_of(r)
