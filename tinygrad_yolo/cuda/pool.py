"""Max pooling on CUDA: kernels/maxpool.cu, one thread per output pixel forward (the first
maximum in row-major window order wins, as in ops/pool.py's MaxPool2d, which it is tested
against) and one per input pixel backward (a gather over the windows that read it: no atomics).
"""
from ..backend import cuda_kernels
from ..ops.geometry import pool_window
from ..ops.pool import MaxPool2d


class CudaMaxPool2d(MaxPool2d):
    """MaxPool2d through the kernels; the winner's index h*W + w is kept for backward."""

    def forward(self, x):
        self.window = win = pool_window("max_pool2d", x.shape, *self.args)
        self.x_shape = x.shape
        y, self.argmax = cuda_kernels().max_pool2d_forward_gpu(x, win)
        return y

    def backward(self, gy):
        return cuda_kernels().max_pool2d_backward_gpu(gy, self.argmax, self.x_shape, self.window)
