"""Step 5 - convolution through im2col: copy every receptive field into a column, and the
convolution is one matrix product; its backward is two more products and col2im.

Output pixel (oy, ox) of a convolution with kernel tap (i, j) reads the input pixel

    y = oy*sh - ph + i*dh,    x = ox*sw - pw + j*dw     (zero where it falls in the padding)

* ``im2col(x, kh, kw, stride, padding, dilation)``: (N, C, H, W) -> col (N, C, kh, kw, Ho, Wo)
  with col[n, c, i, j, oy, ox] = x[n, c, y, x]. For a fixed tap (i, j) the reads are one
  strided slice of the zero-padded input: loop over the taps only.
* ``col2im(col, x_shape, ...)``: the adjoint, which is also im2col's backward: add every
  entry of col back onto the pixel it was read from.
* ``Conv2d``: forward y = W · col with W reshaped to (K, C*kh*kw) (plus the bias); backward
  dW = Σ_n gy · colᵀ, dx = col2im(Wᵀ · gy), db = Σ gy over (N, Ho, Wo). Return (dx, dW) or
  (dx, dW, db) when a bias was given.

The checks compare your im2col with the project's (tinygrad_yolo/ops/im2col.py), check
that col2im is its adjoint, and run the project's "conv2d" gradient-check case (kernels,
strides, paddings and dilations drawn by hypothesis) with your Conv2d.

What the checks rely on: ``im2col`` returns (N, C, kh, kw, Ho, Wo) and ``col2im`` an array of
``x_shape``; stride, padding and dilation arrive as ints or (h, w) pairs (``Conv2d.apply(x, w,
b, stride=..., padding=..., dilation=...)`` passes them to ``__init__``); ``backward`` returns
(dx, dW) or (dx, dW, db), each of its input's shape.

Check it: pytest exercises -m step5          (the reference: exercises/solutions/step5_conv.py)
Read alongside: docs/walkthrough.md, section 5; `tinygrad-yolo demo conv` prints every number
of one small convolution (the col matrix, y, dW, dx) for you to check your code against.
"""
import numpy as np  # noqa: F401  (np.pad, np.matmul, np.einsum)

from tinygrad_yolo.function import Function

from exercises import ExerciseNotDone


def pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def output_size(size, k, s, p, d):
    """Output length along one axis: the last window starts by size + 2p - d(k - 1) - 1."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def im2col(x, kh, kw, stride=1, padding=0, dilation=1):
    """(N, C, H, W) -> (N, C, kh, kw, Ho, Wo): col[n, c, i, j, oy, ox] = x[n, c, y, x] as above."""
    raise ExerciseNotDone("step 5: write im2col (pad x, then one strided slice per kernel tap)")


def col2im(col, x_shape, kh, kw, stride=1, padding=0, dilation=1):
    """The adjoint of im2col: sum every entry of ``col`` onto the input pixel it came from."""
    raise ExerciseNotDone("step 5: write col2im (+= each tap's slice into a padded zero image, "
                          "then crop)")


class Conv2d(Function):
    """Inputs (x, w) or (x, w, b): x (N, C, H, W), w (K, C, kh, kw), b (K,)."""

    def __init__(self, stride=1, padding=0, dilation=1):
        self.stride, self.padding, self.dilation = pair(stride), pair(padding), pair(dilation)

    def forward(self, x, w, b=None):
        raise ExerciseNotDone(
            "step 5: write Conv2d.forward (im2col, then W (K, C*kh*kw) times col)")

    def backward(self, g):
        raise ExerciseNotDone("step 5: write Conv2d.backward (dW = sum over n of gy colᵀ, dx = "
                              "col2im(Wᵀ gy), db = gy summed)")
