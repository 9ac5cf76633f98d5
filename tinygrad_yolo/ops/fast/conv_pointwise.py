"""conv2d's "pointwise" path: a 1x1 kernel without padding needs no im2col at all, because x
(N, C, H*W) is already the column matrix. With a stride (the projection shortcuts of ResNet) the
pixels the kernel reads are kept first (``subsample``); the others get no gradient.

The three products are batched GEMMs over the images; ``gemm`` is NumPy's or CuPy's matmul here
and cuBLAS's strided-batched GEMM in cuda/conv.py's CudaPointwiseConv2d, the one difference.
"""
from ...backend import array_module
from ..conv import Conv2d


class PointwiseConv2d(Conv2d):
    """Conv2d for 1x1 kernels without padding: y = W @ x per image."""

    def forward(self, x, w, b=None):
        win = self.setup(x, w, b)
        self.x_read = subsample(x, win.stride)  # the pixels the 1x1 kernel reads, kept for dW
        N, C, Ho, Wo = self.x_read.shape
        K = w.shape[0]
        y = self.gemm(self.w2, self.x_read.reshape(N, C, Ho * Wo)).reshape(N, K, Ho, Wo)
        if b is not None:
            y += b.reshape(1, K, 1, 1)
        return y

    def backward(self, gy):
        N, C, Ho, Wo = self.x_read.shape
        K, stride = gy.shape[1], self.window.stride
        gy3 = gy.reshape(N, K, Ho * Wo)
        dx = dw = None
        if self.needs_input_grad[0]:
            dx_read = self.gemm(self.w2, gy3, trans_a=True).reshape(N, C, Ho, Wo)
            if stride == (1, 1):
                dx = dx_read
            else:  # the pixels the kernel skipped get none
                dx = array_module(gy).zeros(self.x.shape, dtype=gy.dtype)
                dx[:, :, ::stride[0], ::stride[1]] = dx_read
        if self.needs_input_grad[1]:
            x3 = self.x_read.reshape(N, C, Ho * Wo)
            dw = self.weight_grad(gy3, x3)
        return self.gradients(gy, dx, dw)

    def weight_grad(self, gy3, x3):
        """dW = Σ over images of gy @ xᵀ."""
        return self.gemm(gy3, x3, trans_b=True).sum(axis=0)

    @staticmethod
    def gemm(a, b, trans_a=False, trans_b=False):
        """op(a) @ op(b) over the last two axes (op: the transpose where asked), batched over a
        leading one."""
        a = a.swapaxes(-1, -2) if trans_a else a
        b = b.swapaxes(-1, -2) if trans_b else b
        return array_module(b).matmul(a, b)


def subsample(x, stride):
    """The pixels a 1x1 kernel reads at ``stride``: x itself at stride 1, else a compact copy."""
    if stride == (1, 1):
        return x
    return array_module(x).ascontiguousarray(x[:, :, ::stride[0], ::stride[1]])
