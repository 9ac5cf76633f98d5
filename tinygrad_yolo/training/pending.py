"""The loss of each step as the step left it, converted to floats only when the loop needs them.

Reading a GPU value on the host (``.item()``, ``float()``) waits for every queued kernel, so a
loop that prints the loss each step runs the GPU in lock-step with Python. The loop keeps each
step's loss and parts here as 0-d device arrays, with the host values that go with them (step,
learning rate, images/s, ...), and converts them all at once -- one device-to-host copy -- when it
logs (every --log-every steps), at the end of an epoch, before it saves, and when it stops.

On the CPU converting costs nothing, so every step is converted at once: the loop behaves as if
this class weren't there (per-step progress bar, a non-finite loss stopped before its update).
"""
import numpy as np

from ..backend import array_module, to_numpy


class PendingSteps:
    def __init__(self, device):
        self.at_once = device == "cpu"
        self.records = []  # (loss, parts, info): loss, parts 0-d arrays; info a dict of host values

    def __len__(self):
        return len(self.records)

    def add(self, loss, parts, info):
        """Keep one step; returns the steps ready as floats (this one on the CPU, none on a GPU)."""
        self.records.append((loss, parts, info))
        return self.flush() if self.at_once else []

    def flush(self):
        """[(loss, parts, info)], loss and parts as floats, oldest first; empties the list."""
        records, self.records = self.records, []
        if not records:
            return []
        names = list(records[0][1])
        arrays = [a for loss, parts, _ in records for a in (loss, *(parts[n] for n in names))]
        xp = array_module(arrays[0])
        if xp is np:
            values = [float(a) for a in arrays]
        else:  # one kernel and one copy for all of them
            values = to_numpy(xp.stack([a.reshape(()) for a in arrays])).tolist()
        width = 1 + len(names)
        return [(values[i * width], dict(zip(names, values[i * width + 1:(i + 1) * width])), info)
                for i, (_, _, info) in enumerate(records)]
