"""ResNet blocks and models: gradients, shortcuts, shapes, parameter counts, summary."""
import time

import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import models, nn
from tinygrad_yolo.models import BasicBlock, Bottleneck, ResNet


def check_module_gradients(module, x_shape, seed=0, max_elementwise=48):
    """Gradcheck a module in float64 w.r.t. its input and every parameter. Tensors
    with more than ``max_elementwise`` entries are checked along random directions."""
    module.double()
    x = tg.Tensor(np.random.default_rng(seed).standard_normal(x_shape), requires_grad=True)
    params = list(module.parameters())
    result = tg.check_gradients(lambda x, *ps: module(x), [x] + params,
                                max_elementwise=max_elementwise, n_directions=3, seed=seed)
    assert result.ok, result.message()
    assert result.n_checked >= len(params) + 1
    return result


def perturb_bn(module, seed=1):
    """Give BN layers non-trivial scales, shifts and running statistics (not 1/0/0/1)."""
    rng = np.random.default_rng(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data[...] = rng.uniform(0.5, 1.5, c)
            m.bias.data[...] = rng.uniform(-0.3, 0.3, c)
            m.running_mean.data[...] = rng.uniform(-0.2, 0.2, c)
            m.running_var.data[...] = rng.uniform(0.5, 2.0, c)


# ---- blocks -----------------------------------------------------------------------
@pytest.mark.parametrize("shortcut,stride,in_ch,out_ch", [
    ("A", 1, 4, 4), ("A", 2, 3, 6), ("A", 1, 3, 5), ("B", 1, 3, 5), ("B", 2, 3, 6),
])
@pytest.mark.parametrize("training", [True, False], ids=["batch-stats", "eval"])
def test_basic_block_gradcheck(shortcut, stride, in_ch, out_ch, training):
    tg.seed(0)
    block = BasicBlock(in_ch, out_ch, stride=stride, shortcut=shortcut)
    perturb_bn(block)
    block.train(training)
    check_module_gradients(block, (2, in_ch, 5, 5))


def test_plain_block_gradcheck():
    tg.seed(0)
    block = BasicBlock(3, 6, stride=2, residual=False)
    check_module_gradients(block, (2, 3, 5, 5))


def test_bottleneck_gradcheck():
    tg.seed(0)
    block = Bottleneck(6, 2, stride=2)  # 6 -> 2 -> 2 -> 8 channels, projection shortcut
    perturb_bn(block)
    check_module_gradients(block, (2, 6, 5, 5))


def test_two_block_resnet_gradcheck():
    tg.seed(0)
    net = ResNet(BasicBlock, [1, 1], num_classes=3, width=1 / 16)  # 4 then 8 channels
    perturb_bn(net)
    net.eval()
    check_module_gradients(net, (2, 3, 16, 16))
    net.train()
    check_module_gradients(net, (2, 3, 16, 16), seed=1)


def test_shortcut_a_subsamples_and_zero_pads():
    sc = models.resnet.PadShortcut(2, 5, stride=2)
    x = np.arange(2 * 2 * 5 * 5, dtype=np.float32).reshape(2, 2, 5, 5)
    y = sc(tg.Tensor(x)).numpy()
    assert y.shape == (2, 5, 3, 3)
    np.testing.assert_array_equal(y[:, :2], x[:, :, ::2, ::2])
    assert not y[:, 2:].any()
    assert list(sc.parameters()) == []
    with pytest.raises(ValueError, match="only add channels"):
        models.resnet.PadShortcut(4, 2, 1)


def test_shortcut_choice_and_parameters():
    assert BasicBlock(4, 4).downsample is None  # identity when the shape is kept
    a, b = BasicBlock(4, 8, 2, shortcut="A"), BasicBlock(4, 8, 2, shortcut="B")
    assert isinstance(a.downsample, models.resnet.PadShortcut)
    assert b.num_parameters() - a.num_parameters() == 4 * 8 + 2 * 8  # 1x1 conv + BN scale/shift
    with pytest.raises(ValueError, match="shortcut must be"):
        BasicBlock(4, 8, 2, shortcut="C")


def test_zero_init_residual_makes_blocks_start_as_identity():
    tg.seed(0)
    x = tg.Tensor(np.random.default_rng(0).standard_normal((2, 4, 6, 6)).astype(np.float32))
    block = BasicBlock(4, 4, zero_init_residual=True).eval()
    np.testing.assert_array_equal(block(x).numpy(), np.maximum(x.numpy(), 0))
    plain = BasicBlock(4, 4, zero_init_residual=True, residual=False).eval()
    assert not plain(x).numpy().any()  # without the skip there is nothing to pass through
    net = models.resnet18(width=0.125, zero_init_residual=True)
    assert all(not m.bn2.weight.numpy().any() for m in net.modules() if isinstance(m, BasicBlock))
    assert (net.bn1.weight.numpy() == 1).all()
    net50 = models.resnet50(width=0.0625, zero_init_residual=True)
    assert all(not m.bn3.weight.numpy().any() for m in net50.modules() if isinstance(m, Bottleneck))


# ---- ImageNet-style models ----------------------------------------------------------
@pytest.mark.parametrize("ctor,count", [(models.resnet18, 11_689_512),
                                        (models.resnet34, 21_797_672),
                                        (models.resnet50, 25_557_032)])
def test_parameter_counts_match_torchvision(ctor, count):
    assert ctor(num_classes=1000).num_parameters() == count


def test_resnet18_keys_follow_torchvision():
    sd = models.resnet18(width=0.125).state_dict()
    # 62 parameters + 20 BNs x (running_mean, running_var, num_batches_tracked)
    assert len(sd) == 122
    for key in ("conv1.weight", "bn1.running_var", "layer1.1.conv2.weight",
                "layer2.0.downsample.0.weight", "layer2.0.downsample.1.num_batches_tracked",
                "layer4.1.bn2.bias", "fc.weight", "fc.bias"):
        assert key in sd, key


@pytest.mark.parametrize("size", [224, 448])
def test_resnet18_output_shapes(size):
    tg.seed(0)
    net = models.resnet18(num_classes=20, width=0.25).eval()
    x = tg.Tensor(np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32))
    with tg.no_grad():
        feats = net.features(x)
        logits = net(x)
    assert net.out_channels == 128
    assert feats.shape == (1, 128, size // 32, size // 32)
    assert logits.shape == (1, 20) and np.isfinite(logits.numpy()).all()
    backbone = models.resnet18(width=0.25, include_top=False)
    assert not hasattr(backbone, "fc")
    with tg.no_grad():
        assert backbone.eval()(x).shape == (1, 128, size // 32, size // 32)


def test_resnet18_full_width_forward():
    net = models.resnet18().eval()
    x = tg.Tensor(np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32))
    t0 = time.perf_counter()
    with tg.no_grad():
        out = net(x)
    elapsed = time.perf_counter() - t0
    print(f"resnet18 full width, 1x3x224x224 forward: {elapsed:.2f} s")
    assert out.shape == (1, 1000) and np.isfinite(out.numpy()).all()


def test_resnet50_small_forward_and_out_channels():
    assert models.resnet50(include_top=False).out_channels == 2048
    net = models.resnet50(num_classes=5, width=0.125).eval()
    with tg.no_grad():
        assert net.features(tg.zeros(2, 3, 64, 64)).shape == (2, 256, 2, 2)
        assert net(tg.zeros(2, 3, 64, 64)).shape == (2, 5)


def test_resnet_backward_reaches_every_parameter():
    tg.seed(0)
    net = models.resnet18(num_classes=4, width=0.125)
    x = tg.Tensor(np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32))
    tg.nn.functional.cross_entropy(net(x), np.array([1, 3])).backward()
    missing = [n for n, p in net.named_parameters()
               if p.grad is None or not np.abs(p.grad.numpy()).sum() > 0]
    assert missing == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        models.CifarResNet(depth=21)
    with pytest.raises(ValueError, match="width"):
        models.resnet18(width=0)
    with pytest.raises(ValueError, match="stages"):
        ResNet(BasicBlock, [])
    with pytest.raises(ValueError, match="\\(N, C, H, W\\)"):
        models.resnet20()(tg.zeros(3, 32, 32))


# ---- CIFAR-style models ------------------------------------------------------------
@pytest.mark.parametrize("ctor,count", [(models.resnet20, 269_722), (models.resnet56, 853_018),
                                        (models.plain20, 269_722), (models.plain56, 853_018)])
def test_cifar_parameter_counts(ctor, count):
    """0.27M and 0.85M in the paper; shortcut A adds no parameters, so the plain twins match."""
    assert ctor().num_parameters() == count


def test_cifar_shapes_and_plain_twin_has_no_skips():
    tg.seed(0)
    res, plain = models.resnet20(width=0.5), models.plain20(width=0.5)
    x = tg.Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    assert res.features(x).shape == (2, 32, 8, 8) and res(x).shape == (2, 10)
    assert plain(x).shape == (2, 10) and res.out_channels == 32
    blocks = [m for m in plain.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 9 and all(not b.residual and b.downsample is None for b in blocks)
    assert [n for n, _ in res.named_parameters()] == [n for n, _ in plain.named_parameters()]
    assert len(list(models.resnet56().modules())) > len(list(models.resnet20().modules()))


def test_plain_and_residual_nets_share_weights_but_differ():
    tg.seed(0)
    res, plain = models.resnet20(width=0.25), models.plain20(width=0.25)
    plain.load_state_dict(res.state_dict())
    x = tg.Tensor(np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32))
    with tg.no_grad():
        assert not np.allclose(res.eval()(x).numpy(), plain.eval()(x).numpy())


# ---- summary -----------------------------------------------------------------------
def test_summary_rows_and_table():
    tg.seed(0)
    net = models.resnet20()
    bn_before = net.bn1.running_mean.numpy()
    lines = []
    rows = models.summary(net, (3, 32, 32), print_fn=lines.append)
    by_name = {r.name: r for r in rows}
    assert by_name["conv1"].output_shape == (1, 16, 32, 32) and by_name["conv1"].params == 432
    assert by_name["layer2.0"].type == "BasicBlock"
    assert by_name["layer2.0"].output_shape == (1, 32, 16, 16)
    assert by_name["layer3.2.bn2"].output_shape == (1, 64, 8, 8)
    assert by_name["fc"].output_shape == (1, 10) and by_name["fc"].params == 650
    assert sum(r.params for r in rows) == 269_722
    assert not any(n in by_name for n in ("layer1", "layer2", "layer3"))  # containers are not rows
    text = "\n".join(lines)
    assert "Total params: 269,722" in text and "layer3.2.conv2 (Conv2d)" in text
    np.testing.assert_array_equal(net.bn1.running_mean.numpy(), bn_before)  # traced in eval mode
    assert net.training and all(not m._forward_hooks for m in net.modules())
