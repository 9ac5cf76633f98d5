"""ResNet (He et al. 2016): residual blocks, ImageNet-style ResNet-18/34/50 and
CIFAR-style ResNet-20/56 with their plain (no-skip) twins.

A block computes F(x) with a few conv-BN layers and outputs relu(F(x) + s(x)).
The shortcut s is the identity when F keeps the shape; when F changes it
(stride 2, more channels) the paper gives two options:

  "A"  subsample x with the stride and zero-pad the new channels: no parameters
       (used for the CIFAR nets);
  "B"  a 1x1 convolution with the stride, then BN (the ImageNet nets).

``residual=False`` drops the addition (the paper's "plain" nets, which show the
degradation problem: deeper plain nets train worse). ``zero_init_residual``
zeroes each block's last BN scale, so every block starts as the identity.
Parameter names follow torchvision (``layer1.0.conv1.weight``,
``layer2.0.downsample.0.weight``), so its weights map onto these models.
"""
from .. import nn
from ..nn import init
from ..nn.fused import bn_act
from .pretrained import load_pretrained

SHORTCUTS = ("A", "B")


def conv3x3(in_ch, out_ch, stride=1):
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_ch, out_ch, stride=1):
    return nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)


class PadShortcut(nn.Module):
    """Shortcut "A": x[:, :, ::stride, ::stride] with out_ch - in_ch zero channels appended."""

    def __init__(self, in_ch, out_ch, stride):
        super().__init__()
        if out_ch < in_ch:
            raise ValueError(f"shortcut 'A' can only add channels, not go from {in_ch} to {out_ch}")
        self.in_ch, self.out_ch, self.stride = in_ch, out_ch, stride

    def forward(self, x):
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.out_ch != self.in_ch:
            x = x.pad(((0, 0), (0, self.out_ch - self.in_ch), (0, 0), (0, 0)))
        return x

    def extra_repr(self):
        return f"{self.in_ch} -> {self.out_ch}, stride={self.stride}"


def make_shortcut(in_ch, out_ch, stride, shortcut):
    """None when the block keeps the shape (identity), else the chosen projection."""
    if shortcut not in SHORTCUTS:
        raise ValueError(f"shortcut must be 'A' (zero-pad) or 'B' (1x1 conv), got {shortcut!r}")
    if stride == 1 and in_ch == out_ch:
        return None
    if shortcut == "A":
        return PadShortcut(in_ch, out_ch, stride)
    return nn.Sequential(conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))


class BasicBlock(nn.Module):
    """conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, + shortcut, ReLU (ResNet-18/34, CIFAR
    nets)."""
    expansion = 1

    def __init__(self, in_ch, out_ch, stride=1, shortcut="B", zero_init_residual=False,
                 residual=True):
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.residual = residual
        self.downsample = make_shortcut(in_ch, out_ch, stride, shortcut) if residual else None
        if zero_init_residual:
            init.zeros_(self.bn2.weight)

    def forward(self, x):  # bn_act: relu(bn(.) [+ shortcut]), one fused op on CUDA
        out = bn_act(self.bn1, self.conv1(x), self.relu)
        return bn_act(self.bn2, self.conv2(out), self.relu, self._shortcut(x))

    def _shortcut(self, x):
        """The function computing s(x) (called after bn2 on the CPU, as always), or None."""
        if not self.residual:
            return None
        return lambda: x if self.downsample is None else self.downsample(x)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3(stride) -> 1x1 expand (x4), each with BN, + shortcut, ReLU (ResNet-50).
    ``out_ch`` is the bottleneck width; the block outputs ``4 * out_ch`` channels. The stride
    sits on the 3x3 conv (torchvision's "ResNet v1.5")."""
    expansion = 4

    def __init__(self, in_ch, out_ch, stride=1, shortcut="B", zero_init_residual=False,
                 residual=True):
        super().__init__()
        wide = out_ch * self.expansion
        self.conv1 = conv1x1(in_ch, out_ch)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = conv3x3(out_ch, out_ch, stride)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv3 = conv1x1(out_ch, wide)
        self.bn3 = nn.BatchNorm2d(wide)
        self.relu = nn.ReLU()
        self.residual = residual
        self.downsample = make_shortcut(in_ch, wide, stride, shortcut) if residual else None
        if zero_init_residual:
            init.zeros_(self.bn3.weight)

    def forward(self, x):
        out = bn_act(self.bn1, self.conv1(x), self.relu)
        out = bn_act(self.bn2, self.conv2(out), self.relu)
        return bn_act(self.bn3, self.conv3(out), self.relu, BasicBlock._shortcut(self, x))


def _scaled(channels, width):
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    return max(1, int(round(channels * width)))


def _make_stage(block, in_ch, out_ch, blocks, stride, **block_kwargs):
    layers = [block(in_ch, out_ch, stride, **block_kwargs)]
    for _ in range(1, blocks):
        layers.append(block(out_ch * block.expansion, out_ch, 1, **block_kwargs))
    return nn.Sequential(*layers)


def _init_weights(model):
    """torchvision's init: He-normal (fan_out) convs, BN scale 1 and shift 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            init.ones_(m.weight)
            init.zeros_(m.bias)


class ResNet(nn.Module):
    """ImageNet-style ResNet: 7x7/2 conv stem + BN + ReLU + 3x3/2 max-pool, one stage per
    entry of ``layers`` (blocks per stage; four for ResNet-18/34/50) at 64, 128, 256, 512
    channels x width with strides 1, 2, 2, 2, then global average pool + fc.

    ``include_top=False`` drops the pool and fc: ``forward`` returns the stride-32
    feature map with ``out_channels`` channels (what a detection head consumes);
    ``output_stride=16`` keeps the last stage at the resolution of the third.
    ``features(x)`` returns that map in either case.
    """

    def __init__(self, block, layers, num_classes=1000, width=1.0, include_top=True, shortcut="B",
                 zero_init_residual=False, residual=True, in_channels=3, output_stride=32):
        super().__init__()
        if not 1 <= len(layers) <= 4 or min(layers) < 1:
            raise ValueError(f"layers must give 1 to 4 stages of >= 1 blocks, got {layers}")
        widths = [_scaled(64 * 2 ** i, width) for i in range(len(layers))]
        self.include_top, self.num_stages = include_top, len(layers)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        kw = dict(shortcut=shortcut, residual=residual)
        ch = widths[0]
        if output_stride not in (16, 32) or (output_stride == 16 and len(layers) != 4):
            raise ValueError(
                f"output_stride must be 32, or 16 for four stages, got {output_stride}")
        for i, (w, n) in enumerate(zip(widths, layers)):
            # output_stride 16: the last stage keeps the resolution (finer cells for small objects)
            stride = 1 if i == 0 or (output_stride == 16 and i == 3) else 2
            setattr(self, f"layer{i + 1}", _make_stage(block, ch, w, n, stride, **kw))
            ch = w * block.expansion
        self.out_channels = ch
        if include_top:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(ch, num_classes)
        _init_weights(self)
        if zero_init_residual:  # after _init_weights, which sets every BN scale to 1
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    init.zeros_(m.bn2.weight if isinstance(m, BasicBlock) else m.bn3.weight)

    def features(self, x):
        if x.ndim != 4:
            raise ValueError(f"ResNet expects images (N, C, H, W), got shape {tuple(x.shape)}")
        x = self.maxpool(bn_act(self.bn1, self.conv1(x), self.relu))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x

    def forward(self, x):
        x = self.features(x)
        if not self.include_top:
            return x
        return self.fc(self.avgpool(x).flatten(1))


class CifarResNet(nn.Module):
    """CIFAR-style ResNet (He et al. 2016, section 4.2): 3x3 conv to 16 channels, three
    stages of n blocks at 16, 32, 64 channels (x width; strides 1, 2, 2), global average
    pool, fc. Depth 6n + 2. Shortcut "A" as in the paper; ``residual=False`` is the plain net."""

    def __init__(self, depth=20, num_classes=10, width=1.0, shortcut="A", zero_init_residual=False,
                 residual=True, in_channels=3):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(
                f"CIFAR ResNet depth must be 6n + 2 (20, 32, 44, 56, 110, ...), got {depth}")
        n = (depth - 2) // 6
        widths = [_scaled(c, width) for c in (16, 32, 64)]
        self.conv1 = conv3x3(in_channels, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        kw = dict(shortcut=shortcut, residual=residual, zero_init_residual=zero_init_residual)
        ch = widths[0]
        for i, w in enumerate(widths):
            stage = _make_stage(BasicBlock, ch, w, n, 1 if i == 0 else 2, **kw)
            setattr(self, f"layer{i + 1}", stage)
            ch = w
        self.out_channels = ch
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x):
        if x.ndim != 4:
            raise ValueError(f"CifarResNet expects images (N, C, H, W), got shape {tuple(x.shape)}")
        x = bn_act(self.bn1, self.conv1(x), self.relu)
        return self.layer3(self.layer2(self.layer1(x)))

    def forward(self, x):
        return self.fc(self.avgpool(self.features(x)).flatten(1))


# ---- constructors -----------------------------------------------------------------
def _with_weights(model, weights):
    """``weights``: a torchvision checkpoint (.pth) or .safetensors file to start from."""
    if weights is not None:
        load_pretrained(model, weights)
    return model


def resnet18(num_classes=1000, width=1.0, include_top=True, weights=None, **kwargs):
    model = ResNet(BasicBlock, [2, 2, 2, 2], num_classes, width, include_top, **kwargs)
    return _with_weights(model, weights)


def resnet34(num_classes=1000, width=1.0, include_top=True, weights=None, **kwargs):
    model = ResNet(BasicBlock, [3, 4, 6, 3], num_classes, width, include_top, **kwargs)
    return _with_weights(model, weights)


def resnet50(num_classes=1000, width=1.0, include_top=True, weights=None, **kwargs):
    model = ResNet(Bottleneck, [3, 4, 6, 3], num_classes, width, include_top, **kwargs)
    return _with_weights(model, weights)


def resnet20(num_classes=10, width=1.0, **kwargs):
    return CifarResNet(20, num_classes, width, **kwargs)


def resnet56(num_classes=10, width=1.0, **kwargs):
    return CifarResNet(56, num_classes, width, **kwargs)


def plain20(num_classes=10, width=1.0, **kwargs):
    return CifarResNet(20, num_classes, width, residual=False, **kwargs)


def plain56(num_classes=10, width=1.0, **kwargs):
    return CifarResNet(56, num_classes, width, residual=False, **kwargs)
