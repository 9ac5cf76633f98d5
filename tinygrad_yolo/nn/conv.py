"""Conv2d: a learnable 2-D convolution (NCHW input, weight (out, in, kh, kw))."""
import math

import numpy as np

from ..ops.geometry import int_pair
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter




class Conv2d(Module):
    """PyTorch's Conv2d (groups=1) with its default init: kaiming_uniform_(a=sqrt(5)),
    i.e. U(±1/sqrt(fan_in)), for the weight and U(±1/sqrt(fan_in)) for the bias."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True):
        super().__init__()
        self.in_channels, self.out_channels = int_pair((in_channels, out_channels),
                                                       "(in, out) channels", "Conv2d")
        self.kernel_size = int_pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = int_pair(stride, "stride", "Conv2d")
        self.padding = int_pair(padding, "padding", "Conv2d", minimum=0)
        self.dilation = int_pair(dilation, "dilation", "Conv2d")
        self.weight = Parameter(np.empty((self.out_channels, self.in_channels) + self.kernel_size,
                                         dtype=np.float32))
        self.bias = Parameter(np.empty(self.out_channels, dtype=np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d({self.in_channels}, {self.out_channels}) expects input (N, "
                             f"{self.in_channels}, H, W), got {tuple(x.shape)}")
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                        dilation=self.dilation)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.bias is None:
            s += ", bias=False"
        return s
