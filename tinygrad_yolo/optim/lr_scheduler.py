"""Learning-rate schedules, as closed-form functions of the step count.

A schedule remembers each group's base lr (its lr when the schedule was built)
and sets ``lr = base_lr * factor(step)``. Construction applies step 0;
``step()`` advances by one (call it once per epoch or once per iteration — the
schedule only counts calls). Being closed-form, a schedule can be resumed from
its state_dict or composed: ``LinearWarmup(opt, 5, 0.1, after=MultiStepLR(...))``
runs the warm-up, then hands over to ``after`` counted from 0.
"""
import bisect
import math


class LRScheduler:
    def __init__(self, optimizer):
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = 0
        self.apply_lr()

    def factor(self, epoch):
        """lr / base_lr at step ``epoch``."""
        raise NotImplementedError(f"{type(self).__name__} must define factor(epoch)")

    def lr_at(self, epoch):
        f = self.factor(epoch)
        return [base * f for base in self.base_lrs]

    def apply_lr(self):
        """Set every group's lr to the schedule's value at step ``last_epoch``."""
        for g, lr in zip(self.optimizer.param_groups, self.lr_at(self.last_epoch)):
            g["lr"] = lr

    def step(self):
        self.last_epoch += 1
        self.apply_lr()

    def get_last_lr(self):
        return [g["lr"] for g in self.optimizer.param_groups]

    def _hyper(self):
        return {}

    def state_dict(self):
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs), **self._hyper()}

    def load_state_dict(self, state):
        as_list = lambda v: list(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
        for k, v in self._hyper().items():  # restoring into a differently set schedule is a bug
            saved = state.get(k, v)
            if as_list(saved) != as_list(v):
                raise ValueError(f"{type(self).__name__}: saved {k}={saved!r} differs from this "
                                 f"schedule's {v!r}")
        self.last_epoch = int(state["last_epoch"])
        self.base_lrs = [float(b) for b in state["base_lrs"]]
        self.apply_lr()


class StepLR(LRScheduler):
    """Multiply by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer)

    def factor(self, epoch):
        return self.gamma ** (epoch // self.step_size)

    def _hyper(self):
        return {"step_size": self.step_size, "gamma": self.gamma}


class MultiStepLR(LRScheduler):
    """Multiply by ``gamma`` at each milestone (e.g. [75, 105] for YOLOv1's schedule)."""

    def __init__(self, optimizer, milestones, gamma=0.1):
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def factor(self, epoch):
        return self.gamma ** bisect.bisect_right(self.milestones, epoch)

    def _hyper(self):
        return {"milestones": list(self.milestones), "gamma": self.gamma}


class CosineAnnealingLR(LRScheduler):
    """eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2 (SGDR without restarts)."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if T_max < 1:
            raise ValueError(f"T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, epoch):
        c = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * c for base in self.base_lrs]

    def _hyper(self):
        return {"T_max": self.T_max, "eta_min": self.eta_min}


class LinearWarmup(LRScheduler):
    """Ramp linearly from ``start_factor * base_lr`` to ``base_lr`` over ``warmup_steps``
    steps, then follow ``after`` (another schedule on the same optimizer, counted from
    the end of the warm-up) or stay at base_lr. YOLOv1: base 1e-2, start_factor 0.1."""

    def __init__(self, optimizer, warmup_steps, start_factor=0.1, after=None):
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if not 0 <= start_factor <= 1:
            raise ValueError(f"start_factor must be in [0, 1], got {start_factor}")
        if after is not None and after.optimizer is not optimizer:
            raise ValueError("the schedule after the warm-up must drive the same optimizer")
        self.warmup_steps, self.start_factor = int(warmup_steps), float(start_factor)
        self.after = after
        super().__init__(optimizer)

    def lr_at(self, epoch):
        if epoch < self.warmup_steps:
            f = self.start_factor + (1 - self.start_factor) * epoch / self.warmup_steps
            return [base * f for base in self.base_lrs]
        if self.after is None:
            return list(self.base_lrs)
        return self.after.lr_at(epoch - self.warmup_steps)

    def apply_lr(self):
        if self.after is not None:  # keep the inner schedule's counter in step for get/state
            self.after.last_epoch = max(0, self.last_epoch - self.warmup_steps)
        super().apply_lr()

    def _hyper(self):
        return {"warmup_steps": self.warmup_steps, "start_factor": self.start_factor}

    def state_dict(self):
        state = super().state_dict()
        state["after"] = None if self.after is None else self.after.state_dict()
        return state

    def load_state_dict(self, state):
        if (state.get("after") is None) != (self.after is None):
            raise ValueError("LinearWarmup: the saved state and this schedule differ in having an "
                             "`after` schedule")
        if self.after is not None:
            self.after.load_state_dict(state["after"])
        super().load_state_dict(state)
