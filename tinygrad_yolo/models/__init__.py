"""Models: ResNets (ImageNet- and CIFAR-style, with plain twins) and a summary table."""
from .resnet import (BasicBlock, Bottleneck, CifarResNet, ResNet, plain20, plain56,  # noqa: F401
                     resnet18, resnet20, resnet34, resnet50, resnet56)
from .summary import SummaryRow, summary  # noqa: F401
from .yolo import YOLOv1  # noqa: F401
