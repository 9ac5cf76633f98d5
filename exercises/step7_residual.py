"""Step 7 - the residual block: y = F(x) + shortcut(x), out = relu(y).

F is conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN (the layers are made for you below, with
the names tinygrad_yolo.models.BasicBlock uses, so the checks can load its weights into
yours). The shortcut is the identity when F keeps the shape, and ``self.downsample`` (a 1x1
convolution with the stride, then BN) when it does not; a plain block (residual=False) has
no shortcut at all. Write ``branch``, ``shortcut`` and ``forward``, then ``split_gradient``,
which measures the two parts of dL/dx,

    dL/dx = dL/dy · ∂F/∂x  +  dL/dy · ∂shortcut/∂x,

by feeding the branch and the shortcut two separate leaf copies of x (retain_grad() on y
gives dL/dy). Demo 1 (examples/01_residual_split.py) does the same on the project's block.

Check it: pytest exercises -m step7     (the reference: exercises/solutions/step7_residual.py)
Read alongside: docs/walkthrough.md, section 7; tinygrad_yolo/models/resnet.py;
examples/01_residual_split.py, 02_identity_default.py.
"""
import tinygrad_yolo as tg  # noqa: F401  (tg.Tensor)
from tinygrad_yolo import nn

from exercises import ExerciseNotDone


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
        raise ExerciseNotDone("step 7: write BasicBlock.branch (conv1, bn1, relu, conv2, bn2)")

    def shortcut(self, x):
        raise ExerciseNotDone("step 7: write BasicBlock.shortcut (x itself, or self.downsample(x))")

    def forward(self, x):
        raise ExerciseNotDone("step 7: write BasicBlock.forward (relu(F(x) + shortcut(x)); no "
                              "addition when residual is False)")


def split_gradient(block, x, upstream):
    """For L = sum(upstream * block(x)) (x, upstream: NumPy arrays), the two parts of dL/dx:
    returns (branch part, skip part, dL/dy) as NumPy arrays, y = F(x) + shortcut(x) being the
    sum before the block's final ReLU."""
    raise ExerciseNotDone("step 7: write split_gradient (two leaf copies of x, y.retain_grad(), "
                          "one backward)")
