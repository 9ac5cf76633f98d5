"""Step 7 - the residual block: y = F(x) + shortcut(x), out = relu(y).

F is conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN. The shortcut is the identity when F
keeps the shape, and a 1x1 convolution with the stride plus BN when it does not (He et al.'s
option B). Because the addition passes its upstream gradient unchanged to both inputs,

    dL/dx = dL/dy · ∂F/∂x  +  dL/dy · ∂shortcut/∂x

a branch part and a skip part; for the identity shortcut the skip part *is* dL/dy.
``split_gradient`` measures the two parts separately by feeding the branch and the
shortcut two separate leaf copies of x (demo 1 does the same).
"""
import tinygrad_yolo as tg
from tinygrad_yolo import nn


class BasicBlock(nn.Module):
    """Parameter names as tinygrad_yolo.models.BasicBlock (and torchvision), so weights load."""

    def __init__(self, in_ch, out_ch, stride=1, residual=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.residual = residual
        self.downsample = None
        if residual and (stride != 1 or in_ch != out_ch):
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_ch))

    def branch(self, x):
        """F(x)."""
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))

    def shortcut(self, x):
        return x if self.downsample is None else self.downsample(x)

    def forward(self, x):
        y = self.branch(x)
        if self.residual:
            y = y + self.shortcut(x)
        return self.relu(y)


def split_gradient(block, x, upstream):
    """For L = sum(upstream * block(x)) (x, upstream: NumPy arrays), the two parts of dL/dx:
    returns (branch part, skip part, dL/dy) as NumPy arrays, y = F(x) + shortcut(x) being the
    sum before the block's final ReLU."""
    x_branch = tg.Tensor(x, requires_grad=True)   # feeds F only
    x_skip = tg.Tensor(x, requires_grad=True)     # feeds the shortcut only
    y = block.branch(x_branch) + block.shortcut(x_skip)
    y.retain_grad()
    (block.relu(y) * tg.Tensor(upstream)).sum().backward()
    return x_branch.grad.numpy(), x_skip.grad.numpy(), y.grad.numpy()
