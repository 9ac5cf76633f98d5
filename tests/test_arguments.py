"""Nonsense arguments are one-line errors, not truncated into something that runs; empty batch and
channel dimensions give an empty (or exactly computed) result or a clear error, never a
ZeroDivisionError from deep inside an op."""
import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import dispatch
from tinygrad_yolo.nn import functional as F

X = tg.Tensor(np.ones((1, 2, 6, 6), np.float32))
W = tg.Tensor(np.ones((3, 2, 3, 3), np.float32))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.conv2d(X, W, stride=1.5), TypeError,
     "conv2d: stride must be an int or a (h, w) pair of ints, got 1.5"),
    (lambda: F.conv2d(X, W, stride=(2, 1.0)), TypeError, "conv2d: stride must be an int"),
    (lambda: F.conv2d(X, W, stride=True), TypeError, "conv2d: stride must be an int"),
    (lambda: F.conv2d(X, W, stride="2"), TypeError, "conv2d: stride must be an int"),
    (lambda: F.conv2d(X, W, stride=0), ValueError, "conv2d: stride must be positive, got 0"),
    (lambda: F.conv2d(X, W, padding=-1), ValueError, "conv2d: padding must be >= 0, got -1"),
    (lambda: F.conv2d(X, W, padding=0.5), TypeError, "conv2d: padding must be an int"),
    (lambda: F.conv2d(X, W, dilation=(1, 0)), ValueError,
     "conv2d: dilation must be positive, got (1, 0)"),
    (lambda: F.conv2d(X, W, stride=(1, 1, 1)), ValueError,
     "conv2d: stride must be an int or a (h, w) pair"),
    (lambda: F.max_pool2d(X, 1.5), TypeError, "max_pool2d: kernel_size must be an int"),
    (lambda: F.max_pool2d(X, 2, stride=0), ValueError,
     "max_pool2d: stride must be positive, got 0"),
    (lambda: F.avg_pool2d(X, 2, stride=1.5), TypeError, "avg_pool2d: stride must be an int"),
    (lambda: F.avg_pool2d(X, (2, 0)), ValueError,
     "avg_pool2d: kernel_size must be positive, got (2, 0)"),
    (lambda: F.adaptive_avg_pool2d(X, 1.5), TypeError,
     "adaptive_avg_pool2d: output_size must be an int"),
    (lambda: tg.nn.Conv2d(2, 3, 1.5), TypeError, "Conv2d: kernel_size must be an int"),
    (lambda: tg.nn.Conv2d(2, 3, 3, stride=1.5), TypeError, "Conv2d: stride must be an int"),
    (lambda: tg.nn.Conv2d(2, 3, 3, dilation=0), ValueError,
     "Conv2d: dilation must be positive, got 0"),
    (lambda: tg.nn.Conv2d(2.5, 3, 3), TypeError, "Conv2d: (in, out) channels must be an int"),
    (lambda: tg.nn.Conv2d(2, 0, 3), ValueError, "Conv2d: (in, out) channels must be positive"),
])
def test_nonsense_arguments_are_one_line_errors(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_integer_types_from_numpy_are_fine():
    y = F.conv2d(X, W, stride=np.int64(2), padding=(np.int32(1), 1))
    assert y.shape == (1, 3, 3, 3)


def grads_of(out, *tensors):
    out.sum().backward()
    return [t.grad.shape for t in tensors]


@pytest.mark.parametrize("N, C, K", [(0, 2, 3), (2, 0, 3), (2, 2, 0)])
def test_conv2d_with_an_empty_dimension(N, C, K):
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal((N, C, 28, 28)).astype(np.float32), requires_grad=True)
    w = tg.Tensor(rng.standard_normal((K, C, 3, 3)).astype(np.float32), requires_grad=True)
    b = tg.Tensor(rng.standard_normal(K).astype(np.float32), requires_grad=True)
    # whatever the map size would pick, an empty input takes the reference (dispatch.conv2d_path)
    assert dispatch.conv2d_path(x.data, w.data, 1, 1, 1) == "reference"
    y = F.conv2d(x, w, b, stride=1, padding=1)
    assert y.shape == (N, K, 28, 28)
    # no input channels: every output is the bias (a sum over nothing is 0)
    np.testing.assert_array_equal(y.numpy(),
                                  np.broadcast_to(b.numpy()[None, :, None, None], y.shape))
    assert grads_of(y, x, w, b) == [x.shape, w.shape, b.shape]
    np.testing.assert_array_equal(w.grad.numpy(), 0)


def test_pooling_and_batch_norm_with_an_empty_dimension():
    for shape in [(0, 2, 6, 6), (2, 0, 6, 6)]:
        x = tg.Tensor(np.zeros(shape, np.float32), requires_grad=True)
        assert F.max_pool2d(x, 2).shape == shape[:2] + (3, 3)
        assert F.avg_pool2d(x, 2).shape == shape[:2] + (3, 3)
        assert F.adaptive_avg_pool2d(x, 1).shape == shape[:2] + (1, 1)
        C = shape[1]
        stats = np.zeros(C, np.float32), np.ones(C, np.float32)
        weight = tg.Tensor(np.ones(C, np.float32), requires_grad=True)
        y = F.batch_norm(x, *stats, weight, tg.Tensor(np.zeros(C, np.float32)), training=False)
        assert grads_of(y, x, weight) == [x.shape, (C,)]
    # training statistics of no values: a clear error
    with pytest.raises(ValueError, match="expected more than 1 value per channel"):
        tg.nn.BatchNorm2d(2)(tg.Tensor(np.zeros((0, 2, 4, 4), np.float32)))
    x = tg.Tensor(np.zeros((2, 0, 4, 4), np.float32), requires_grad=True)
    assert F.batch_norm(x, None, None, training=True).shape == (2, 0, 4, 4)


def test_softmax_and_losses_with_an_empty_dimension():
    empty = tg.Tensor(np.zeros((2, 0)), requires_grad=True)
    assert empty.softmax(-1).shape == (2, 0) and empty.log_softmax(-1).shape == (2, 0)
    no_rows = tg.Tensor(np.zeros((0, 3)), requires_grad=True)
    assert F.cross_entropy(no_rows, np.zeros(0, np.int64), reduction="sum").item() == 0.0
    with pytest.raises(ValueError, match="cross_entropy: the batch is empty"):
        F.cross_entropy(no_rows, np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="YOLOv1Loss: the batch is empty"):
        tg.detection.YOLOv1Loss(S=2, B=1, C=1)(tg.Tensor(np.zeros((0, 2, 2, 6))),
                                               np.zeros((0, 2, 2, 6)))
