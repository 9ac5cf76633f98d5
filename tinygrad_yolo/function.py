"""Function: one node of the computation graph.

A Function subclass implements ``forward`` on raw arrays (numpy or cupy) and
``backward`` on gradient arrays; ``apply`` wraps it for Tensors and records the
graph edge only when some input needs a gradient and grad mode is on.

The graph links ops, not tensors: a recorded Function keeps, per input, its graph node
(the Function that made it, the tensor itself if it is a leaf that needs a gradient, or
None if no gradient flows there) and its shape and dtype. It never holds an intermediate
tensor, so once the forward is over the only activations alive are those some op saved
for its backward (PyTorch's autograd works the same way). A non-leaf tensor's hooks and
retain_grad() live on the Function that made it (``_hooks``, ``_retained``).

    class Mul(Function):
        def forward(self, a, b):
            self.a, self.b = a, b          # save only what backward needs
            return a * b
        def backward(self, g):
            return g * self.b, g * self.a  # one gradient per input (None = not needed)

Contract for ``backward``: return one array (or None) per input, each a new array
or ``g`` itself / a view of ``g``. The engine sums broadcast gradients back to
each input's shape, casts them to its dtype, and copies borrowed ones before a
leaf keeps them.
"""
import threading

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
    # Every subclass is registered so tests (and `tinygrad-yolo gradcheck`) can
    # prove that no differentiable op slipped in without a gradient check.
    registry = {}

    # Instrumentation points (tinygrad_yolo.debug): called around every op when set.
    _observers = []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Function.registry[f"{cls.__module__}.{cls.__qualname__}"] = cls

    def forward(self, *arrays):
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, grad):
        raise NotImplementedError(f"{type(self).__name__} has no backward (it is not differentiable)")

    @classmethod
    def apply(cls, *inputs, **kwargs):
        """Run the op on Tensors (or Python scalars / arrays) and return a Tensor."""
        from .tensor import Tensor, as_tensor  # tensor.py imports the ops, which import us

        tensors = _as_tensors(inputs, as_tensor)
        fn = cls(**kwargs) if kwargs else cls()
        fn.needs_input_grad = tuple(t.requires_grad for t in tensors)
        record = is_grad_enabled() and any(fn.needs_input_grad)
        if Function._observers:
            for obs in Function._observers:
                obs.before_forward(fn, tensors)
        try:
            out = fn.forward(*[t.data for t in tensors])
        except ValueError as e:  # name the op and the shapes instead of NumPy's internals
            shapes = ", ".join(str(t.shape) for t in tensors)
            raise ValueError(f"{cls.__name__} on input shapes {shapes}: {e}") from None
        result = Tensor._from_op(out, fn if record else None, record)
        if record:
            fn.parents = [_node(t) for t in tensors]
            fn.input_meta = [(t.data.shape, t.data.dtype) for t in tensors]
        if Function._observers:
            for obs in Function._observers:
                obs.after_forward(fn, tensors, result)
        return result

    def release(self):
        """Drop saved arrays and parents after backward (unless retain_graph)."""
        self.__dict__.clear()
        self.freed = True

    freed = False
    _hooks = None      # hooks registered on the output tensor (Tensor.register_hook)
    _retained = None   # weakref to the output tensor after its retain_grad()

    @property
    def name(self):
        return type(self).__name__


def _node(t):
    """The graph node an input is reached through: the op that made it, the tensor itself for a
    leaf that needs a gradient, None where no gradient flows."""
    if not t.requires_grad:
        return None
    return t._ctx if t._ctx is not None else t


def _as_tensors(inputs, as_tensor):
    """Tensors for every input; Python scalars take the first tensor's dtype and
    device, so ``x * 2.0`` keeps float32 and never mixes devices."""
    like = next((x for x in inputs if hasattr(x, "_ctx")), None)
    tensors = [as_tensor(x, like) for x in inputs]
    if len(tensors) > 1:
        dev = tensors[0].device
        for t in tensors[1:]:
            if t.device != dev:
                raise RuntimeError(
                    f"expected all tensors on one device, got {dev} and {t.device} "
                    f"(move one with .to({dev!r}) or .to({t.device!r}))")
    return tensors
