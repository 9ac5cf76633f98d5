"""The moving average of the weights a run evaluates (training/ema.py)."""
import math

import numpy as np

import tinygrad_yolo as tg
from tinygrad_yolo import nn
from tinygrad_yolo.training.ema import ModelEMA


def _pair():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    average = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    return model, average


def test_the_average_spans_a_twentieth_of_the_run_and_forgets_the_first_steps():
    model, average = _pair()
    ema = ModelEMA(model, average, steps=1000)
    assert ema.decay == 1 - 20 / 1000 and ema.tau == 100.0
    assert ModelEMA(model, average, steps=50).decay == 0.9
    assert ModelEMA(model, average, steps=10**6).decay == 0.9999
    start = {k: v.copy() for k, v in average.state_dict().items()}
    # it starts as the model
    np.testing.assert_array_equal(start["0.weight"], model.state_dict()["0.weight"])
    expected = start["0.weight"].astype(np.float64)
    for k in range(1, 4):
        for p in model.parameters():
            p.data += 1.0
        model[1].num_batches_tracked.data[...] = k
        ema.update()
        d = 0.98 * (1 - math.exp(-k / 100.0))
        expected = d * expected + (1 - d) * model.state_dict()["0.weight"]
    np.testing.assert_allclose(average.state_dict()["0.weight"], expected, rtol=1e-6)
    assert int(average[1].num_batches_tracked.data) == 3  # integer buffers follow the model


def test_state_round_trips_exactly():
    model, average = _pair()
    ema = ModelEMA(model, average, steps=300)
    for p in model.parameters():
        p.data *= 0.5
    ema.update()
    other = ModelEMA(*_pair(), steps=10)
    other.load_state_dict(ema.state_dict())
    assert (other.updates, other.decay, other.tau) == (ema.updates, ema.decay, ema.tau)
    for key, value in ema.model.state_dict().items():
        np.testing.assert_array_equal(other.model.state_dict()[key], value)
