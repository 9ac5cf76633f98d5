"""An exponential moving average of the weights, the model a run evaluates and keeps.

After each optimizer step every floating-point parameter and buffer (batch-norm statistics
too) moves as  w_avg <- d * w_avg + (1 - d) * w,  with d ramping up as d = decay * (1 - exp(-k / tau))
over the k updates so far (ultralytics' ModelEMA): the first steps' weights, far from where
training is going, are forgotten at once. On a small dataset the average is markedly better than
the last weights, whose noise from the last few batches it smooths out.
"""
import math

from ..function import no_grad


class ModelEMA:
    def __init__(self, model, average_model, decay=0.999, tau=None, steps=None):
        """``average_model``: a second instance of the same architecture (any weights: they are
        overwritten with ``model``'s). ``tau`` defaults to a tenth of ``steps``."""
        self.model = average_model
        self.decay = float(decay)
        self.tau = float(tau if tau is not None else max(1.0, (steps or 2000) / 10))
        self.updates = 0
        self.model.load_state_dict(model.state_dict())
        self.model.eval()
        self._pairs = list(zip(self.model._state_tensors().values(), model._state_tensors().values()))

    def factor(self):
        return self.decay * (1 - math.exp(-self.updates / self.tau))

    def update(self):
        self.updates += 1
        d = self.factor()
        with no_grad():
            for avg, w in self._pairs:
                if avg.dtype.kind == "f":
                    avg.data *= d
                    avg.data += (1 - d) * w.data
                else:  # integer buffers (step counters) follow the model
                    avg.data[...] = w.data

    def state_dict(self):
        return {"updates": self.updates, "decay": self.decay, "tau": self.tau, "model": self.model.state_dict()}

    def load_state_dict(self, state):
        self.updates, self.decay, self.tau = int(state["updates"]), float(state["decay"]), float(state["tau"])
        self.model.load_state_dict(state["model"])
