"""ONNX export, read back by ONNX Runtime: the raw grid equal to our forward (max relative
difference <= 1e-4 in float32) and the post-processed file giving the detections our
postprocess gives, for both heads, strides 32 and 16, widths 0.25 and 1.0, batch 1 and
dynamic; the metadata; the one-line refusals."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import nn
from tinygrad_yolo.data import EvalTransform, open_rgb
from tinygrad_yolo.data.synthetic import render_image
from tinygrad_yolo.detection import postprocess
from tinygrad_yolo.export import ExportError
from tinygrad_yolo.inference.evaluate import predict

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from tinygrad_yolo.export.onnx import build_onnx, export_onnx  # noqa: E402
from tinygrad_yolo.export.onnx_runner import OnnxDetector, open_session  # noqa: E402

PHOTO = Path(__file__).resolve().parents[1] / "docs" / "images" / "dice_val_2.jpg"


def relative_difference(ours, theirs):
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(ours)))


def detector(seed=0, **config):
    """A YOLOv1 whose batch norms have non-trivial statistics (so folding is tested)."""
    config = {"S": 2, "B": 2, "C": 3, "img_size": 64, "width": 0.25, "hidden": 32, **config}
    tg.manual_seed(seed)
    model = tg.models.YOLOv1(**config)
    rng = np.random.default_rng(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            for tensor, low, high in ((module.running_mean, -0.2, 0.2), (module.weight, 0.5, 1.5),
                                      (module.running_var, 0.5, 1.5), (module.bias, -0.2, 0.2)):
                tensor.data[...] = rng.uniform(low, high, tensor.shape)
    return model.eval()


def images(n, size, seed=0):
    """Real pictures as `detect` feeds them: a photograph and rendered synthetic scenes."""
    rng, transform = np.random.default_rng(seed), EvalTransform(size)
    pictures = [open_rgb(PHOTO)] + [render_image(rng, 96)[0] for _ in range(n - 1)]
    empty = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    return np.stack([transform(p, *empty).image for p in pictures[:n]])


# Every head and stride at width 0.25; width 1.0 (a full ResNet-18) with each head and stride once.
@pytest.mark.parametrize("head,stride,width", [("conv", 32, 0.25), ("conv", 16, 0.25),
                                               ("fc", 32, 0.25), ("fc", 16, 0.25),
                                               ("conv", 16, 1.0), ("fc", 32, 1.0)])
def test_raw_grid_equals_our_forward_with_a_dynamic_batch(tmp_path, head, stride, width):
    model = detector(head=head, stride=stride, width=width)
    path = export_onnx(model, tmp_path / "model.onnx", dynamic_batch=True)
    session = open_session(path)
    for x in (np.random.default_rng(1).random((2, 3, 64, 64), np.float32), images(3, 64)):
        theirs = session.run(None, {"images": x})[0]
        assert theirs.shape == (len(x), 2, 2, 13)
        assert relative_difference(predict(model, x), theirs) <= 1e-4


def test_batch_1_export_has_a_fixed_batch_and_runs_image_by_image(tmp_path):
    model = detector(img_size=128, S=4)
    path = export_onnx(model, tmp_path / "model.onnx")
    assert open_session(path).get_inputs()[0].shape == [1, 3, 128, 128]
    x = images(3, 128)
    found = OnnxDetector(path).detect(x, conf_threshold=0.01)
    expected = postprocess(predict(model, x), S=4, B=2, C=3, conf_threshold=0.01)
    assert len(found) == 3
    for a, b in zip(found, expected):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("head,stride", [("conv", 32), ("conv", 16), ("fc", 32), ("fc", 16)])
def test_postprocessed_file_gives_the_detections_of_our_postprocess(tmp_path, head, stride):
    model = detector(head=head, stride=stride, S=4, img_size=128, C=5, seed=2)
    path = export_onnx(model, tmp_path / "model.onnx", dynamic_batch=True, with_postprocess=True)
    x = images(4, 128, seed=3)
    grid = predict(model, x)
    for conf, iou in ((0.01, 0.5), (0.05, 0.3)):  # the thresholds are inputs of the file
        found = OnnxDetector(path).detect(x, conf_threshold=conf, iou_threshold=iou)
        expected = postprocess(grid, S=4, B=2, C=5, conf_threshold=conf, iou_threshold=iou)
        assert sum(len(e) for e in expected) > 10
        for a, b in zip(found, expected):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_checker_metadata_and_folded_batch_norm(tmp_path):
    model = detector()
    path = export_onnx(model, tmp_path / "m.onnx", classes=["die", "cup", "pen"])
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["classes"]) == ["die", "cup", "pen"]
    assert (meta["S"], meta["B"], meta["C"], meta["img_size"]) == ("2", "2", "3", "64")
    assert "/ 255" in meta["input"] and meta["batch_norm"] == "folded into the convolutions"
    ops = {n.op_type for n in proto.graph.node}
    assert "BatchNormalization" not in ops and {"Conv", "Add", "MaxPool", "LeakyRelu"} <= ops
    assert OnnxDetector(path).classes == ["die", "cup", "pen"]


def test_a_batch_norm_without_a_conv_before_it_is_kept(tmp_path):
    from tinygrad_yolo.export.onnx import emit
    from tinygrad_yolo.export.onnx_graph import GraphWriter
    bn = nn.BatchNorm2d(4)
    writer = GraphWriter()
    emit(writer, nn.Sequential(nn.ReLU(), bn), "images", "")
    assert [n.op_type for n in writer.nodes] == ["Relu", "BatchNormalization"]


class Swish(nn.Module):
    def forward(self, x):
        return x * x.sigmoid()


def test_a_module_without_an_onnx_equivalent_is_named():
    model = detector()
    model.head[0].add_module("2", Swish())  # the LeakyReLU after the head's conv
    with pytest.raises(ExportError, match=r"^export: head\.0\.2 is a Swish, an op with no ONNX"):
        build_onnx(model)


def test_missing_packages_name_the_extra(monkeypatch, tmp_path):
    path = export_onnx(detector(), tmp_path / "m.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ExportError, match=r'^onnxruntime is not installed; pip install '
                                          r'"tinygrad_yolo\[export\]" adds it$'):
        OnnxDetector(path)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ExportError, match=r'^onnx is not installed; pip install'):
        export_onnx(detector(), tmp_path / "n.onnx")


def test_a_foreign_or_broken_file_is_refused_in_one_line(tmp_path):
    helper = onnx.helper
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])
    foreign = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])],
                                                  "g", [x], [y]))
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    with pytest.raises(ExportError, match=r"foreign\.onnx: not an ONNX file exported by "
                                          r"tinygrad_yolo") as error:
        OnnxDetector(tmp_path / "foreign.onnx")
    assert "\n" not in str(error.value)
    (tmp_path / "broken.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(ExportError, match=r"broken\.onnx: ONNX Runtime can't read this file") as e:
        OnnxDetector(tmp_path / "broken.onnx")
    assert "\n" not in str(e.value)


def test_only_detectors_are_exported():
    with pytest.raises(ExportError, match="expected a YOLOv1 detector, got a ResNet"):
        build_onnx(tg.models.resnet18(width=0.25))


def test_opsets_without_the_ops_used_are_refused():
    with pytest.raises(ExportError, match=r"^export: opset 11 is outside 13\.\.\d+"):
        build_onnx(detector(), opset=11)


def test_the_export_command_writes_model_onnx_beside_the_weights(tmp_path, capsys):
    from tinygrad_yolo.cli import main
    model = detector(S=4, img_size=128)
    tg.save({"model": model.state_dict(), "config": model.config, "classes": ["a", "b", "c"]},
            tmp_path / "best.npz")
    assert main(["export", "--weights", str(tmp_path / "best.npz"), "--with-postprocess",
                 "--dynamic-batch", "--conf", "0.01"]) == 0
    assert f"wrote {tmp_path / 'model.onnx'}" in capsys.readouterr().out
    onnx_detector = OnnxDetector(tmp_path / "model.onnx")
    assert onnx_detector.classes == ["a", "b", "c"] and onnx_detector.img_size == 128
    x = images(2, 128)
    expected = postprocess(predict(model, x), S=4, B=2, C=3, conf_threshold=0.01)
    for a, b in zip(onnx_detector.detect(x, conf_threshold=0.01), expected):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_export_command_without_onnx_is_one_line(tmp_path, capsys, monkeypatch):
    from tinygrad_yolo.cli import main
    model = detector()
    tg.save({"model": model.state_dict(), "config": model.config, "classes": ["a", "b", "c"]},
            tmp_path / "best.npz")
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", "--weights", str(tmp_path / "best.npz")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ('tinygrad-yolo export: error: onnx is not installed; '
                           'pip install "tinygrad_yolo[export]" adds it')
