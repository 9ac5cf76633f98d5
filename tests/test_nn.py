"""nn: Module bookkeeping, state dicts, layers, init, dropout, seeding."""
import math

import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import nn

from reference import ref_conv


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.act = nn.ReLU()
        self.blocks = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.Linear(3, 2, bias=False)))
        self.scale = nn.Parameter(np.ones(2, dtype=np.float32))
        self.register_buffer("count", np.zeros(2, dtype=np.float32))
        self.register_buffer("scratch", np.zeros(1, dtype=np.float32), persistent=False)
        self.not_registered = [nn.Linear(2, 2)]  # a plain list hides modules, as in PyTorch

    def forward(self, x):
        return self.blocks(self.act(self.fc1(x))) * self.scale


# ---- registration and traversal ---------------------------------------------------
def test_named_parameters_use_dotted_paths_in_definition_order():
    names = [n for n, _ in Net().named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "blocks.0.weight", "blocks.0.bias",
                     "blocks.1.0.weight"]


def test_buffers_children_and_modules():
    net = Net()
    assert [n for n, _ in net.named_buffers()] == ["count", "scratch"]
    assert all(not b.requires_grad for b in net.buffers())
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "blocks"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "act", "blocks", "blocks.0",
                                                   "blocks.1", "blocks.1.0"]
    assert len(list(net.modules())) == 7


def test_parameters_are_leaf_tensors_that_require_grad():
    p = nn.Parameter([1.0, 2.0])
    assert isinstance(p, tg.Tensor) and p.requires_grad and p.is_leaf and p.dtype == np.float32
    assert "Parameter containing" in repr(p)
    y = p * 2.0
    assert type(y) is tg.Tensor  # ops on parameters give plain tensors


def test_shared_parameter_listed_once():
    net = nn.Module()
    lin = nn.Linear(2, 2)
    net.a, net.b = lin, lin
    assert len(list(net.parameters())) == 2
    assert list(net.state_dict()) == ["a.weight", "a.bias"]


def test_reassigning_and_deleting_attributes():
    net = Net()
    with pytest.raises(TypeError, match="parameter 'scale'"):
        net.scale = tg.Tensor([1.0, 2.0])
    net.scale = nn.Parameter([3.0, 4.0])
    np.testing.assert_array_equal(net.scale.numpy(), [3.0, 4.0])
    net.count = np.full(2, 7.0, dtype=np.float32)  # assigning to a buffer name keeps it a buffer
    assert "count" in dict(net.named_buffers())
    del net.fc1
    assert "fc1.weight" not in dict(net.named_parameters())
    with pytest.raises(AttributeError, match="no attribute 'fc1'"):
        net.fc1


def test_assigning_before_super_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Bad()


def test_buffer_must_not_require_grad():
    m = nn.Module()
    with pytest.raises(TypeError, match="must not require grad"):
        m.register_buffer("b", tg.Tensor([1.0], requires_grad=True))


def test_train_eval_propagates():
    net = Net()
    assert net.training and net.blocks[1][0].training
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_call_runs_forward_and_hooks():
    lin = nn.Linear(2, 2)
    seen = []
    handle = lin.register_forward_hook(
        lambda m, inp, out: seen.append((m, inp[0].shape, out.shape)))
    lin(tg.zeros(5, 2))
    assert seen == [(lin, (5, 2), (5, 2))]
    handle.remove()
    lin(tg.zeros(1, 2))
    assert len(seen) == 1
    lin.register_forward_hook(lambda m, inp, out: out * 0.0)  # a returned value replaces the output
    np.testing.assert_array_equal(lin(tg.ones(1, 2)).numpy(), np.zeros((1, 2)))


def test_zero_grad_modes():
    net = Net()
    net(tg.randn(2, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_repr_is_a_readable_tree():
    r = repr(Net())
    assert r.startswith("Net(\n  (fc1): Linear(in_features=4, out_features=3, bias=True)")
    assert "  (blocks): Sequential(\n    (0): Linear" in r
    assert "      (0): Linear(in_features=3, out_features=2, bias=False)" in r


# ---- state dicts ------------------------------------------------------------------
def test_state_dict_contents_are_host_copies():
    net = Net()
    sd = net.state_dict()
    # the non-persistent buffer is left out
    assert list(sd) == ["scale", "count", "fc1.weight", "fc1.bias", "blocks.0.weight",
                        "blocks.0.bias", "blocks.1.0.weight"]
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    sd["fc1.weight"][...] = 99.0
    assert not (net.fc1.weight.numpy() == 99.0).any()


def test_state_dict_round_trip_in_place():
    tg.seed(0)
    a, b = Net(), Net()
    a.count = np.array([1.0, 2.0], dtype=np.float32)
    weight_obj = b.fc1.weight
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b.fc1.weight is weight_obj  # loaded in place: optimizers keep their references
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(va, vb, err_msg=k)
    x = tg.randn(3, 4)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_load_state_dict_casts_to_parameter_dtype_and_accepts_tensors():
    net = nn.Linear(2, 2)
    sd = {"weight": tg.Tensor(np.eye(2)), "bias": np.array([1, 2])}  # float64 tensor, int array
    net.load_state_dict(sd)
    assert net.weight.dtype == np.float32 and net.bias.dtype == np.float32
    np.testing.assert_array_equal(net.bias.numpy(), [1.0, 2.0])


def test_strict_load_lists_missing_unexpected_and_misshaped_keys():
    net = Net()
    sd = net.state_dict()
    del sd["fc1.bias"]
    sd["extra.weight"] = np.zeros(3)
    sd["blocks.0.weight"] = np.zeros((5, 3))
    with pytest.raises(KeyError) as err:
        net.load_state_dict(sd)
    msg = str(err.value)
    assert "missing keys: fc1.bias" in msg and "unexpected keys: extra.weight" in msg
    assert "blocks.0.weight: checkpoint (5, 3) vs model (3, 3)" in msg


def test_non_strict_load_reports_keys_but_still_checks_shapes():
    net = Net()
    sd = net.state_dict()
    del sd["fc1.bias"]
    sd["extra"] = np.zeros(1)
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["fc1.bias"] and res.unexpected_keys == ["extra"]
    sd["scale"] = np.zeros(3)
    with pytest.raises(KeyError, match="scale: checkpoint \\(3,\\) vs model \\(2,\\)"):
        net.load_state_dict(sd, strict=False)


def test_failed_load_changes_nothing():
    net = Net()
    before = net.state_dict()
    sd = {k: np.zeros_like(v) for k, v in before.items()}
    sd["blocks.0.bias"] = np.zeros(7)
    with pytest.raises(KeyError):
        net.load_state_dict(sd)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


# ---- devices and dtypes -----------------------------------------------------------
def test_to_cpu_is_in_place_and_returns_self():
    net = Net()
    p = net.fc1.weight
    assert net.to("cpu") is net and net.fc1.weight is p and p.device == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        net.to("tpu")


@pytest.mark.skipif(tg.cuda_available(), reason="checks the error raised when CUDA is unavailable")
def test_to_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CuPy"):
        Net().to("cuda")


@pytest.mark.skipif(not tg.cuda_available(), reason="needs CuPy and a GPU")
def test_to_cuda_moves_parameters_and_buffers():
    net = Net().to("cuda")
    assert all(t.device == "cuda" for t in list(net.parameters()) + list(net.buffers()))
    out = net(tg.randn(2, 4).to("cuda"))
    assert out.device == "cuda"
    assert isinstance(net.state_dict()["fc1.weight"], np.ndarray)


def test_double_casts_float_tensors_only():
    bn = nn.BatchNorm2d(3).double()
    assert bn.weight.dtype == np.float64 and bn.running_mean.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64
    with pytest.raises(TypeError, match="floating-point"):
        bn.to_dtype(np.int32)
    assert bn.float().weight.dtype == np.float32


# ---- layers -----------------------------------------------------------------------
def test_linear_matches_numpy_and_default_init_bounds():
    tg.seed(1)
    lin = nn.Linear(50, 20)
    assert lin.weight.shape == (20, 50) and lin.bias.shape == (20,)
    bound = 1 / math.sqrt(50)  # kaiming_uniform_(a=sqrt(5)) == U(±1/sqrt(fan_in))
    largest = np.abs(lin.weight.numpy()).max()
    assert largest <= bound and largest > 0.9 * bound
    assert np.abs(lin.bias.numpy()).max() <= bound
    x = np.random.default_rng(0).standard_normal((7, 50)).astype(np.float32)
    np.testing.assert_allclose(lin(tg.Tensor(x)).numpy(),
                               x @ lin.weight.numpy().T + lin.bias.numpy(), rtol=1e-5, atol=1e-6)


def test_linear_gradcheck():
    lin = nn.Linear(3, 2).double()
    x = tg.Tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    assert tg.gradcheck(lambda x, w, b: lin(x), [x, lin.weight, lin.bias])


def test_activations_flatten_identity():
    x = tg.Tensor(np.array([[-2.0, 0.5], [3.0, -0.25]], dtype=np.float32))
    np.testing.assert_array_equal(nn.ReLU()(x).numpy(), [[0, 0.5], [3, 0]])
    np.testing.assert_allclose(nn.LeakyReLU(0.1)(x).numpy(), [[-0.2, 0.5], [3, -0.025]], rtol=1e-6)
    np.testing.assert_allclose(nn.Sigmoid()(x).numpy(), 1 / (1 + np.exp(-x.numpy())), rtol=1e-6)
    np.testing.assert_allclose(nn.Tanh()(x).numpy(), np.tanh(x.numpy()), rtol=1e-6)
    assert nn.Identity()(x) is x
    assert nn.Flatten()(tg.zeros(2, 3, 4, 5)).shape == (2, 60)
    assert nn.Flatten(0, 1)(tg.zeros(2, 3, 4)).shape == (6, 4)
    assert repr(nn.LeakyReLU(0.1)) == "LeakyReLU(negative_slope=0.1)"


def test_sequential_indexing_slicing_iteration():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c and list(seq) == [a, b, c]
    sub = seq[:2]
    assert isinstance(sub, nn.Sequential) and list(sub) == [a, b]
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    x = tg.randn(4, 2)
    np.testing.assert_array_equal(seq(x).numpy(), c(b(a(x))).numpy())
    seq.append(nn.Identity())
    assert len(seq) == 4 and "3.weight" not in seq.state_dict()


def test_modulelist_registers_its_modules():
    ml = nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 1)])
    ml.append(nn.Linear(1, 2))
    assert len(ml) == 3 and ml[2].out_features == 2
    assert [n for n, _ in ml.named_parameters()][-2:] == ["2.weight", "2.bias"]
    with pytest.raises(NotImplementedError, match="iterate"):
        ml(tg.zeros(1, 1))


# ---- dropout and seeding ----------------------------------------------------------
def test_dropout_is_inverted_and_identity_in_eval():
    tg.seed(0)
    d = nn.Dropout(0.25)
    x = tg.ones(200, 100)
    y = d(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert d.eval()(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert not nn.Dropout(1.0)(x).numpy().any()
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.5)


def test_dropout_gradient_is_the_mask():
    tg.seed(3)
    x = tg.Tensor(np.ones((4, 5)), requires_grad=True)
    y = nn.Dropout(0.5)(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())  # dy/dx = mask / (1 - p) = y here


def test_seed_makes_init_and_dropout_repeatable():
    def run():
        tg.seed(42)
        lin = nn.Linear(8, 8)
        return lin.weight.numpy(), nn.Dropout(0.5)(tg.ones(8, 8)).numpy(), tg.randn(3).numpy()

    a, b = run(), run()
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    tg.seed(43)
    assert not np.array_equal(nn.Linear(8, 8).weight.numpy(), a[0])
    with pytest.raises(ValueError, match="seed"):
        tg.seed(-1)


# ---- init -------------------------------------------------------------------------
def test_calculate_gain_and_fans():
    assert nn.init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert nn.init.calculate_gain("leaky_relu", 0.1) == pytest.approx(math.sqrt(2 / 1.01))
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert nn.init.calculate_fan_in_and_fan_out(tg.zeros(8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.init.calculate_gain("swish")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.kaiming_normal_(tg.zeros(5))


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_statistics(mode):
    tg.seed(0)
    w = tg.zeros(256, 128, 3, 3)
    fan = 128 * 9 if mode == "fan_in" else 256 * 9
    assert nn.init.kaiming_normal_(w, mode=mode, nonlinearity="relu") is w
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / fan), rel=0.01)
    assert abs(w.numpy().mean()) < 1e-3
    nn.init.kaiming_uniform_(w, mode=mode, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / fan)
    assert np.abs(w.numpy()).max() <= bound
    assert w.numpy().std() == pytest.approx(bound / math.sqrt(3), rel=0.01)  # std of U(-b, b)
    with pytest.raises(ValueError, match="fan_in"):
        nn.init.kaiming_normal_(w, mode="fan_avg")


def test_simple_initialisers_keep_dtype_and_write_in_place():
    w = tg.zeros(100, 100, dtype=np.float64)
    data = w.data
    nn.init.normal_(w, 2.0, 0.5)
    assert w.data is data and w.dtype == np.float64
    assert w.numpy().mean() == pytest.approx(2.0, abs=0.02)
    assert w.numpy().std() == pytest.approx(0.5, rel=0.03)
    nn.init.uniform_(w, -1, 3)
    assert w.numpy().min() >= -1 and w.numpy().max() < 3
    nn.init.constant_(w, 0.5)
    assert (w.numpy() == 0.5).all()
    nn.init.zeros_(w)
    assert not w.numpy().any()
    nn.init.ones_(w)
    assert (w.numpy() == 1).all()
    nn.init.xavier_uniform_(w)
    assert np.abs(w.numpy()).max() <= math.sqrt(6 / 200)


# ---- convolution, batch norm, pooling modules ---------------------------------------
def test_conv2d_module_matches_direct_convolution_and_pytorch_init():
    tg.seed(0)
    conv = nn.Conv2d(3, 5, 3, stride=2, padding=1)
    assert conv.weight.shape == (5, 3, 3, 3) and conv.bias.shape == (5,)
    bound = 1 / math.sqrt(27)
    assert np.abs(conv.weight.numpy()).max() <= bound and np.abs(conv.bias.numpy()).max() <= bound
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6)).astype(np.float32)
    ref = ref_conv(x, conv.weight.numpy(), conv.bias.numpy(), (2, 2), (1, 1), (1, 1))
    np.testing.assert_allclose(conv(tg.Tensor(x)).numpy(), ref, rtol=1e-5, atol=1e-5)
    assert repr(conv) == "Conv2d(3, 5, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))"
    assert nn.Conv2d(2, 4, 1, bias=False).bias is None
    with pytest.raises(ValueError, match="expects input \\(N, 3, H, W\\)"):
        conv(tg.zeros(1, 4, 8, 8))


def test_conv2d_module_gradcheck():
    tg.seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1, dilation=(1, 2)).double()
    x = tg.Tensor(np.random.default_rng(1).standard_normal((2, 2, 5, 6)), requires_grad=True)
    assert tg.gradcheck(lambda x, w, b: conv(x), [x, conv.weight, conv.bias])


def bn_input(shape=(8, 3, 4, 5), seed=0):
    rng = np.random.default_rng(seed)
    scale = np.array([1.0, 2.0, 0.5]).reshape((1, 3) + (1,) * (len(shape) - 2))
    shift = np.array([0.5, -1.0, 3.0]).reshape(scale.shape)
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def test_batchnorm2d_training_uses_batch_statistics_and_updates_running_ones():
    bn = nn.BatchNorm2d(3, momentum=0.1)
    x = bn_input()
    y = bn(tg.Tensor(x)).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)
    mean, var_unbiased = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * var_unbiased, rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1


def test_batchnorm2d_eval_uses_running_statistics_and_changes_nothing():
    bn = nn.BatchNorm2d(3)
    bn.running_mean.data[...] = [1.0, -1.0, 2.0]
    bn.running_var.data[...] = [4.0, 1.0, 0.25]
    bn.weight.data[...] = [1.0, 2.0, 3.0]
    bn.bias.data[...] = [0.0, 0.5, -0.5]
    bn.eval()
    x = bn_input()
    y = bn(tg.Tensor(x)).numpy()
    rm, rv = bn.running_mean.numpy(), bn.running_var.numpy()
    scale, shift = np.array([1, 2, 3.0])[:, None, None], np.array([0, 0.5, -0.5])[:, None, None]
    ref = (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5) * scale + shift
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(bn.running_mean.numpy(), [1.0, -1.0, 2.0])
    assert bn.num_batches_tracked.item() == 0
    bn.train()
    assert not np.allclose(bn(tg.Tensor(x)).numpy(), y)  # the same input normalises differently


def test_batchnorm_running_stats_converge_and_cumulative_momentum():
    x = bn_input((64, 3, 4, 4))
    bn = nn.BatchNorm2d(3)
    for _ in range(80):
        bn(tg.Tensor(x))
    np.testing.assert_allclose(bn.running_mean.numpy(), x.mean(axis=(0, 2, 3)), rtol=1e-3,
                               atol=1e-3)
    cma = nn.BatchNorm2d(3, momentum=None)  # cumulative average: the plain mean of the batch means
    batches = [bn_input(seed=s) for s in range(3)]
    for b in batches:
        cma(tg.Tensor(b))
    mean_of_means = np.mean([b.mean(axis=(0, 2, 3)) for b in batches], 0)
    np.testing.assert_allclose(cma.running_mean.numpy(), mean_of_means, rtol=1e-5)


def test_batchnorm1d_matches_per_feature_normalisation():
    for shape in [(16, 3), (8, 3, 5)]:
        bn = nn.BatchNorm1d(3)
        x = bn_input(shape)
        axes = (0,) if len(shape) == 2 else (0, 2)
        y = bn(tg.Tensor(x)).numpy()
        std = np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
        ref = (x - x.mean(axis=axes, keepdims=True)) / std
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
        assert y.shape == shape
    with pytest.raises(ValueError, match="BatchNorm1d\\(3\\) expects 2-d or 3-d"):
        nn.BatchNorm1d(3)(tg.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="3 channels in dimension 1"):
        nn.BatchNorm2d(3)(tg.zeros(2, 4, 4, 4))


def test_batchnorm_gradcheck_in_both_modes():
    for training in (True, False):
        bn = nn.BatchNorm2d(3).double().train(training)
        bn.running_var.data[...] = [0.5, 1.5, 2.0]
        bn.weight.data[...] = [0.5, 1.5, -1.0]
        x = tg.Tensor(bn_input((4, 3, 2, 3)).astype(np.float64), requires_grad=True)
        assert tg.gradcheck(lambda x, w, b: bn(x), [x, bn.weight, bn.bias])


def test_batchnorm_state_dict_has_running_stats():
    bn = nn.BatchNorm2d(3)
    bn(tg.Tensor(bn_input((4, 3, 3, 3))))
    sd = bn.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    fresh = nn.BatchNorm2d(3)
    fresh.load_state_dict(sd)
    np.testing.assert_array_equal(fresh.running_var.numpy(), bn.running_var.numpy())
    assert fresh.num_batches_tracked.item() == 1


def test_pooling_modules():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    t = tg.Tensor(x)
    mp = nn.MaxPool2d(2)(t).numpy()
    np.testing.assert_array_equal(mp, x.reshape(2, 3, 3, 2, 3, 2).max(axis=(3, 5)))
    ap = nn.AvgPool2d(3, stride=3)(t).numpy()
    np.testing.assert_allclose(ap, x.reshape(2, 3, 2, 3, 2, 3).mean(axis=(3, 5)), rtol=1e-5,
                               atol=1e-6)
    gap = nn.AdaptiveAvgPool2d(1)(t).numpy()
    np.testing.assert_allclose(gap, x.mean(axis=(2, 3), keepdims=True), rtol=1e-5, atol=1e-6)
    assert nn.MaxPool2d(3, stride=2, padding=1)(t).shape == (2, 3, 3, 3)
    assert nn.AdaptiveAvgPool2d((2, 3))(t).shape == (2, 3, 2, 3)
    assert repr(nn.MaxPool2d(3, 2, 1)) == "MaxPool2d(kernel_size=3, stride=2, padding=1)"


def test_load_error_message_reads_plainly():
    with pytest.raises(nn.module.StateDictError) as err:
        nn.Linear(2, 2).load_state_dict({"weight": np.zeros((2, 2))})
    assert str(err.value) == "error loading state_dict into Linear: missing keys: bias"


def test_deepcopy_gives_an_independent_module():
    import copy
    net = Net()
    clone = copy.deepcopy(net)
    clone.fc1.weight.data[...] = 0
    assert np.abs(net.fc1.weight.numpy()).sum() > 0
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in net.named_parameters()]


def test_batchnorm_without_running_stats_always_uses_the_batch():
    bn = nn.BatchNorm2d(3, affine=False, track_running_stats=False).eval()
    assert bn.state_dict() == {} and list(bn.parameters()) == []
    y = bn(tg.Tensor(bn_input())).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
