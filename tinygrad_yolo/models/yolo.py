"""YOLOv1 (Redmon et al. 2016) on a ResNet backbone.

    image (N, 3, H, W) -> ResNet features (N, F, H/32, W/32)
      -> [extra conv3x3 stride 2 + BN + LeakyReLU stages until the map is S x S]
      -> head -> (N, S, S, B*5 + C)

Per cell: B boxes of (x, y, sqrt_w, sqrt_h, conf), then C class scores; linear
outputs as in the paper. x, y are the box centre relative to the cell, sqrt_w,
sqrt_h the square roots of width and height relative to the image: predicting
the square roots directly (darknet's sqrt=1) means the loss never takes the
square root of a prediction, so it can't produce NaN; decode squares them.
"""
from .. import nn
from . import resnet

BACKBONES = {"resnet18": resnet.resnet18, "resnet34": resnet.resnet34, "resnet50": resnet.resnet50}


def _conv_bn_leaky(c_in, c_out, kernel, stride=1):
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.LeakyReLU(0.1))


class YOLOv1(nn.Module):
    def __init__(self, backbone="resnet18", S=7, B=2, C=20, img_size=448, width=1.0, head="conv",
                 hidden=None, dropout=0.5, stride=32):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
        if head not in ("conv", "fc"):
            raise ValueError(f"head must be 'conv' or 'fc', got {head!r}")
        if stride not in (16, 32):
            raise ValueError(f"stride must be 32 or 16, got {stride}")
        if img_size % 32:
            raise ValueError(
                f"img_size must be a multiple of 32 (the backbone's stride), got {img_size}")
        self.config = dict(backbone=backbone, S=S, B=B, C=C, img_size=img_size, width=width,
                           head=head, hidden=hidden, dropout=dropout, stride=stride)
        self.S, self.B, self.C, self.img_size = S, B, C, img_size
        self.backbone = BACKBONES[backbone](width=width, include_top=False, output_stride=stride)
        channels, size = self.backbone.out_channels, img_size // stride

        # Halve the map until it is S x S (e.g. 448 -> 14 -> 7 for S = 7).
        extra = []
        while size > S and size % 2 == 0:
            extra.append(_conv_bn_leaky(channels, channels, 3, stride=2))
            size //= 2
        if size != S:
            side = img_size // stride
            raise ValueError(f"img_size {img_size} gives a {side}x{side} feature map, which can't "
                             f"be halved to S={S}; use img_size = {stride} * S * 2^k "
                             f"(e.g. {stride * S})")
        self.extra = nn.Sequential(*extra)

        out = B * 5 + C
        if head == "conv":
            hidden = hidden or max(8, int(round(256 * width)))
            self.head = nn.Sequential(_conv_bn_leaky(channels, hidden, 3),
                                      nn.Conv2d(hidden, out, 1))
        else:  # the paper's fully connected head
            hidden = hidden or 4096
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * S * S, hidden),
                                      nn.LeakyReLU(0.1), nn.Dropout(dropout),
                                      nn.Linear(hidden, S * S * out))

    def forward(self, x):
        """(N, 3, img_size, img_size) -> (N, S, S, B*5+C). The conv head is fully convolutional, so
        it also takes a window of such an image (each side a multiple of img_size / S), giving one
        output cell per 32 (or 16) pixels as in the whole image: training on windows of large
        photos is how small objects get seen at full resolution for less compute."""
        size = self.img_size // self.S  # input pixels per output cell
        image_shape = (self.img_size, self.img_size)
        whole = x.ndim == 4 and x.shape[1] == 3 and tuple(x.shape[2:]) == image_shape
        window = (self.config["head"] == "conv" and x.ndim == 4 and x.shape[1] == 3
                  and all(d % size == 0 and d > 0 for d in x.shape[2:]))
        if not (whole or window):
            or_windows = (f" or windows with sides a multiple of {size}"
                          if self.config["head"] == "conv" else "")
            raise ValueError(f"YOLOv1 expects images of shape (N, 3, {self.img_size}, "
                             f"{self.img_size}){or_windows}, got {tuple(x.shape)}")
        y = self.head(self.extra(self.backbone(x)))
        if self.config["head"] == "conv":
            return y.permute(0, 2, 3, 1)  # (N, B*5+C, S, S) -> (N, S, S, B*5+C)
        return y.reshape(x.shape[0], self.S, self.S, self.B * 5 + self.C)
