"""The optimizers' update of one CUDA parameter as one kernel (kernels/optim.cu through
kernels/fused.py): what optim/sgd.py's sgd_update and optim/adam.py's adam_update, the reference,
compute in ~6 and ~10 array calls per parameter, with the same state (momentum_buffer; step,
exp_avg, exp_avg_sq), so checkpoints and load_state_dict don't know the difference.
dispatch.optimizer_path picks these for CUDA parameters."""
from .. import backend
from ..saved import modifying


def _kernels():
    return backend.cuda_kernels("fused")


def _contiguous(a):
    return backend.array_module(a).ascontiguousarray(a)


def sgd_update(p, state, lr, momentum, dampening, nesterov, weight_decay):
    xp = backend.array_module(p.data)
    buf, first = None, False
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = xp.empty_like(p.data)
            first = True
    with modifying(p.data):  # a graph still holding p fails at its backward, as in PyTorch
        _kernels().sgd_step_gpu(p.data, _contiguous(p.grad.data), buf, lr, momentum, dampening,
                                weight_decay, nesterov, first)


def adam_update(p, state, lr, betas, eps, weight_decay, decoupled):
    xp = backend.array_module(p.data)
    if not state:
        state["step"] = 0
        state["exp_avg"] = xp.zeros_like(p.data)
        state["exp_avg_sq"] = xp.zeros_like(p.data)
    state["step"] += 1
    with modifying(p.data):
        _kernels().adam_step_gpu(p.data, _contiguous(p.grad.data), state["exp_avg"],
                                 state["exp_avg_sq"], lr, betas[0], betas[1], eps, weight_decay,
                                 state["step"], decoupled)
