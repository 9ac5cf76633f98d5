"""Function: one node of the computation graph.

A Function subclass implements ``forward`` on raw arrays (numpy or cupy) and ``backward`` on
gradient arrays; ``apply`` wraps it for Tensors and records the graph edge only when some input
needs a gradient and grad mode is on.

    class Mul(Function):
        def forward(self, a, b):
            self.a, self.b = a, b          # save only what backward needs
            return a * b
        def backward(self, g):
            return g * self.b, g * self.a  # one gradient per input (None = not needed)

Contract for ``backward``: return one array (or None) per input, each a new array or ``g``
itself / a view of ``g``. The engine sums broadcast gradients back to each input's shape, casts
them to its dtype, and copies borrowed ones before a leaf keeps them.

The graph links ops, not tensors: a recorded Function keeps, per input, its graph node (the
Function that made it, the tensor itself if it is a leaf that needs a gradient, or None if no
gradient flows there) and its shape and dtype. It never holds an intermediate tensor, so once
the forward is over the only activations alive are those some op saved for its backward (as in
PyTorch's autograd). A non-leaf tensor's hooks and retain_grad() live on the Function that made
it (``_hooks``, ``_retained``).

What an op saved must not change before its backward reads it: saved.py locks it, one call
from ``apply`` (the engine's internals, not needed to follow the algorithm).
"""
import threading

from . import saved

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "grad_enabled", True)


class _GradMode:
    """Context manager (and decorator) switching graph recording off or on."""

    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        self.prev = is_grad_enabled()
        _state.grad_enabled = self.enabled

    def __exit__(self, *exc):
        _state.grad_enabled = self.prev

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


def no_grad():
    """``with tg.no_grad():`` — ops inside record nothing (inference, optimizer steps)."""
    return _GradMode(False)


def enable_grad():
    """``with tg.enable_grad():`` — record again inside a no_grad block."""
    return _GradMode(True)


class Function:
    # Every subclass is registered so tests (and `tinygrad-yolo gradcheck`) can prove that no
    # differentiable op slipped in without a gradient check.
    registry = {}
    # The profiler and anomaly mode (debug.py): called around every op while installed.
    _observers = []

    freed = False      # set by release(): the graph was freed after its backward
    saved_locks = ()   # what saved.py locked for this op
    _hooks = None      # hooks registered on the output tensor (Tensor.register_hook)
    _retained = None   # weakref to the output tensor after its retain_grad()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Function.registry[f"{cls.__module__}.{cls.__qualname__}"] = cls

    def forward(self, *arrays):
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, grad):
        raise NotImplementedError(f"{type(self).__name__} has no backward "
                                  "(it is not differentiable)")

    @classmethod
    def apply(cls, *inputs, **kwargs):
        """Run the op on Tensors (or Python scalars / arrays) and return a Tensor."""
        tensors = as_tensors(inputs)
        fn = cls(**kwargs)
        fn.needs_input_grad = tuple(t.requires_grad for t in tensors)
        record = is_grad_enabled() and any(fn.needs_input_grad)
        for observer in Function._observers:
            observer.before_forward(fn, tensors)
        try:
            out = fn.forward(*[t.data for t in tensors])
        except ValueError as e:  # name the op and the shapes instead of NumPy's internals
            shapes = ", ".join(str(t.shape) for t in tensors)
            raise ValueError(f"{cls.__name__} on input shapes {shapes}: {e}") from None
        result = Tensor._from_op(out, fn if record else None, record)
        if record:
            fn.parents = [graph_node(t) for t in tensors]
            fn.input_meta = [(t.data.shape, t.data.dtype) for t in tensors]
        saved.after_forward(fn, tensors, result, record)
        for observer in Function._observers:
            observer.after_forward(fn, tensors, result)
        return result

    def release(self):
        """Drop saved arrays and parents after backward (unless retain_graph), unlocking them."""
        saved.release(self)
        self.__dict__.clear()
        self.freed = True

    def __del__(self):  # a graph dropped without a backward unlocks what it saved
        saved.release(self)

    @property
    def name(self):
        return type(self).__name__


def graph_node(t):
    """The graph node an input is reached through: the op that made it, the tensor itself for a
    leaf that needs a gradient, None where no gradient flows."""
    if not t.requires_grad:
        return None
    return t._ctx if t._ctx is not None else t


def as_tensors(inputs):
    """Tensors for every input; Python scalars take the first tensor's dtype and device, so
    ``x * 2.0`` keeps float32 and never mixes devices."""
    like = next((x for x in inputs if isinstance(x, Tensor)), None)
    tensors = [as_tensor(x, like) for x in inputs]
    device = tensors[0].device if tensors else None
    for t in tensors[1:]:
        if t.device != device:
            raise RuntimeError(f"expected all tensors on one device, got {device} and {t.device} "
                               f"(move one with .to({device!r}) or .to({t.device!r}))")
    return tensors


# tensor.py imports the ops, and the ops import this module, so the Tensor class can only be
# imported once everything above is defined.
from .tensor import Tensor, as_tensor  # noqa: E402
