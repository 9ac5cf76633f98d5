"""Loss scaling for float16 autocast, with PyTorch's torch.amp.GradScaler semantics and names.

float16 has 5 exponent bits: gradients below ~6e-8 round to 0. Multiplying the loss by a large
scale S lifts every gradient by S into float16's range; ``unscale_`` divides them back (in
float32, before any clipping); a step whose gradients hold inf or NaN (S too large) is skipped
and S halves; after ``growth_interval`` clean steps in a row S doubles.

    scaler = tg.amp.GradScaler()
    scaler.scale(loss).backward()
    scaler.unscale_(opt)            # optional: only to look at / clip the true gradients
    scaler.step(opt)                # unscales if not done yet; skips the step on inf/NaN
    scaler.update()                 # back off or grow the scale

The state (scale and the count of clean steps) goes into checkpoints with ``state_dict``.
bfloat16 has float32's exponent range and needs no scaler.
"""
import numpy as np

from ..backend import array_module

_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"


class GradScaler:
    def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        if not growth_factor > 1.0 or not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler needs growth_factor > 1 and 0 < backoff_factor < 1, "
                             f"got {growth_factor} and {backoff_factor}")
        if int(growth_interval) < 1:
            raise ValueError(f"GradScaler growth_interval must be at least 1, got "
                             f"{growth_interval}")
        self._enabled = bool(enabled)
        self._scale = float(init_scale)
        self._growth_factor, self._backoff_factor = float(growth_factor), float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._per_optimizer = {}  # id(optimizer) -> {"stage": ..., "found_inf": bool}

    def is_enabled(self):
        return self._enabled

    def get_scale(self):
        return self._scale if self._enabled else 1.0

    def scale(self, outputs):
        """outputs (a Tensor, or a list/tuple of them) times the current scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        return outputs * self._scale

    def _state(self, optimizer):
        return self._per_optimizer.setdefault(id(optimizer),
                                              {"stage": _READY, "found_inf": False})

    def unscale_(self, optimizer):
        """Divide the gradients of ``optimizer``'s parameters by the scale, in place, and note
        whether any holds inf or NaN. Once per optimizer between two update() calls."""
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state["stage"] == _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the "
                               "last update()")
        if state["stage"] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step()")
        inv = 1.0 / self._scale
        finite = []  # per gradient, a scalar on its device: one wait for all of them below
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.data
                g *= g.dtype.type(inv)
                finite.append(array_module(g).isfinite(g).all())
        found = bool(finite) and not bool(array_module(finite[0]).stack(finite).all())
        state["stage"], state["found_inf"] = _UNSCALED, found

    def step(self, optimizer):
        """optimizer.step() unless the (unscaled) gradients hold inf or NaN; returns its result,
        or None when skipped."""
        if not self._enabled:
            return optimizer.step()
        state = self._state(optimizer)
        if state["stage"] == _STEPPED:
            raise RuntimeError("step() has already been called since the last update()")
        if state["stage"] == _READY:
            self.unscale_(optimizer)
        state["stage"] = _STEPPED
        return None if state["found_inf"] else optimizer.step()

    def update(self, new_scale=None):
        """After the step(s): back off on inf/NaN (the growth count restarts), else count a clean
        step and grow the scale every ``growth_interval`` of them; ``new_scale`` sets it
        instead."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale)
        elif self._per_optimizer:
            if any(s["found_inf"] for s in self._per_optimizer.values()):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def found_inf(self, optimizer):
        """Whether this iteration's step of ``optimizer`` was (or will be) skipped."""
        return self._per_optimizer.get(id(optimizer), {}).get("found_inf", False)

    def state_dict(self):
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state):
        if not self._enabled:
            return
        if not state:
            raise RuntimeError("the GradScaler state to load is empty (saved by a disabled "
                               "scaler?)")
        self._scale = float(np.asarray(state["scale"]))
        self._growth_factor = float(np.asarray(state["growth_factor"]))
        self._backoff_factor = float(np.asarray(state["backoff_factor"]))
        self._growth_interval = int(np.asarray(state["growth_interval"]))
        self._growth_tracker = int(np.asarray(state["_growth_tracker"]))
