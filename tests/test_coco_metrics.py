"""COCO mAP@[.5:.95] and mAP@0.5 (101-point) against pycocotools' COCOeval, to 1e-6."""
import contextlib
import io

import numpy as np
import pytest

from tinygrad_yolo.detection import encode_targets, postprocess
from tinygrad_yolo.detection.coco_metrics import coco_average_precision

coco = pytest.importorskip("pycocotools.coco")
cocoeval = pytest.importorskip("pycocotools.cocoeval")

# Above COCOeval's "all" area range: how a difficult object is made ignored there.
HIDDEN_AREA = 1e11


def xywh(box):
    return [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]


def pycocotools_map(detections, ground_truths, num_classes, difficult=None):
    """(mAP@[.5:.95], mAP@0.5) by COCOeval from the same per-image arrays."""
    images, annotations, results = [], [], []
    for n, (dets, gts) in enumerate(zip(detections, ground_truths)):
        images.append({"id": n + 1, "width": 1, "height": 1})
        for m, g in enumerate(gts):
            hidden = difficult is not None and difficult[n][m]
            annotations.append({"id": len(annotations) + 1, "image_id": n + 1, "iscrowd": 0,
                                "category_id": int(g[4]) + 1, "bbox": xywh(g),
                                "area": HIDDEN_AREA if hidden else xywh(g)[2] * xywh(g)[3]})
        results += [{"image_id": n + 1, "category_id": int(d[5]) + 1, "bbox": xywh(d),
                     "score": float(d[4])} for d in dets]
    truth = {"images": images, "annotations": annotations,
             "categories": [{"id": c + 1, "name": str(c)} for c in range(num_classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = coco.COCO()
        gt.dataset = truth
        gt.createIndex()
        evaluator = cocoeval.COCOeval(gt, gt.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats[0], evaluator.stats[1]


def random_boxes(rng, n):
    corner = rng.uniform(0, 0.8, (n, 2))
    return np.concatenate([corner, corner + rng.uniform(0.02, 0.2, (n, 2))], axis=1)


def random_case(rng, n_images=6, num_classes=3):
    """Ground truths, and detections near them (jittered, duplicated, misclassed), some far
    away; scores rounded so that ties occur."""
    detections, truths = [], []
    for _ in range(n_images):
        m = int(rng.integers(0, 6))
        gts = np.concatenate([random_boxes(rng, m), rng.integers(0, num_classes, (m, 1))], axis=1)
        near = gts[rng.integers(0, max(m, 1), int(rng.integers(0, 9)))] if m else np.zeros((0, 5))
        jittered = near[:, :4] + rng.normal(0, 0.02, (len(near), 4))
        jittered = np.concatenate([np.minimum(jittered[:, :2], jittered[:, 2:]),
                                   np.maximum(jittered[:, :2], jittered[:, 2:])], axis=1)
        boxes = np.concatenate([jittered, random_boxes(rng, int(rng.integers(0, 4)))])
        classes = np.concatenate([near[:, 4], rng.integers(0, num_classes, len(boxes) - len(near))])
        classes = np.where(rng.random(len(boxes)) < 0.1, rng.integers(0, num_classes, len(boxes)),
                           classes)
        scores = np.round(rng.uniform(0.05, 1, len(boxes)), 1)
        detections.append(np.concatenate([boxes, scores[:, None], classes[:, None]], axis=1))
        truths.append(gts)
    return detections, truths


def assert_same_as_pycocotools(detections, truths, num_classes, difficult=None):
    ours = coco_average_precision(detections, truths, num_classes, difficult=difficult)
    theirs = pycocotools_map(detections, truths, num_classes, difficult)
    assert ours["map"] == pytest.approx(theirs[0], abs=1e-6)
    assert ours["map50"] == pytest.approx(theirs[1], abs=1e-6)
    return ours


@pytest.mark.parametrize("seed", range(12))
def test_random_detections_match_pycocotools(seed):
    rng = np.random.default_rng(seed)
    detections, truths = random_case(rng)
    if sum(len(d) for d in detections) == 0:  # COCO.loadRes refuses an empty result list
        detections[0] = np.array([[0.1, 0.1, 0.3, 0.3, 0.5, 0]])
    assert_same_as_pycocotools(detections, truths, num_classes=3)


@pytest.mark.parametrize("seed", range(4))
def test_difficult_objects_are_ignored_as_pycocotools_ignores_them(seed):
    rng = np.random.default_rng(100 + seed)
    detections, truths = random_case(rng, n_images=8)
    difficult = [rng.random(len(g)) < 0.3 for g in truths]
    assert_same_as_pycocotools(detections, truths, 3, difficult)


def test_more_than_100_detections_per_image_keeps_the_best_100():
    rng = np.random.default_rng(7)
    truths = [np.concatenate([random_boxes(rng, 30), np.zeros((30, 1))], axis=1)]
    boxes = np.repeat(truths[0][:, :4], 5, axis=0) + rng.normal(0, 0.01, (150, 4))
    detections = [np.concatenate([boxes, rng.random((150, 1)), np.zeros((150, 1))], axis=1)]
    assert_same_as_pycocotools(detections, truths, 1)


def detections_through_our_decode(rng, S=7, B=2, C=4, n_images=10):
    """Ground truths encoded to a grid, the grid made a noisy network output (both box slots,
    class scores, background confidences), then our decode + per-class NMS: detections with
    the structure `detect` gives (per-class duplicates, low-score tails, clipped boxes)."""
    truths, outputs = [], []
    for _ in range(n_images):
        m = int(rng.integers(1, 5))
        boxes, labels = random_boxes(rng, m), rng.integers(0, C, m)
        target, _ = encode_targets(boxes, labels, S=S, C=C)
        out = rng.normal(0, 0.05, (S, S, B * 5 + C))
        out[..., 4::5][..., :B] = rng.uniform(0, 0.2, (S, S, B))
        for b in range(B):
            out[..., b * 5:b * 5 + 2] = target[..., :2] + rng.normal(0, 0.05, (S, S, 2))
            size = np.sqrt(target[..., 2:4]) + rng.normal(0, 0.03, (S, S, 2))
            out[..., b * 5 + 2:b * 5 + 4] = size
            out[..., b * 5 + 4] += target[..., 4] * rng.uniform(0.5, 1.0, (S, S))
        out[..., B * 5:] += target[..., 5:] * 0.8
        outputs.append(out)
        truths.append(np.concatenate([boxes, labels[:, None]], axis=1))
    return postprocess(np.stack(outputs), S=S, B=B, C=C, conf_threshold=0.01), truths


def test_detections_from_our_postprocess_match_pycocotools():
    detections, truths = detections_through_our_decode(np.random.default_rng(3))
    ours = assert_same_as_pycocotools(detections, truths, 4)
    assert 0.2 < ours["map"] < ours["map50"] <= 1.0


def test_perfect_detections_give_one_and_absent_classes_are_left_out():
    truths = [np.array([[0.1, 0.1, 0.4, 0.5, 0], [0.5, 0.5, 0.9, 0.8, 2]])]
    detections = [np.array([[*g[:4], 0.9, g[4]] for g in truths[0]])]
    out = coco_average_precision(detections, truths, num_classes=3)
    assert out["map"] == pytest.approx(1.0) and out["map50"] == pytest.approx(1.0)
    assert np.isnan(out["ap"][1]) and out["ap50"][0] == pytest.approx(1.0)


def test_one_detection_two_thirds_overlapping_counts_at_low_thresholds_only():
    truths = [np.array([[0.0, 0.0, 0.3, 0.3, 0]])]
    detections = [np.array([[0.0, 0.0, 0.3, 0.2, 0.9, 0]])]  # IoU 2/3: matches at 0.5 .. 0.65
    out = coco_average_precision(detections, truths, num_classes=1)
    assert out["map50"] == pytest.approx(1.0) and out["map"] == pytest.approx(4 / 10)


def test_bad_shapes_are_one_clear_error():
    with pytest.raises(ValueError, match=r"detections of image 0 must have shape \(K, 6\)"):
        coco_average_precision([np.zeros((2, 5))], [np.zeros((0, 5))], 2)
    with pytest.raises(ValueError, match="detections for 1 images but ground truths for 2"):
        coco_average_precision([np.zeros((0, 6))], [np.zeros((0, 5))] * 2, 2)
    with pytest.raises(ValueError, match=r"ground truths of image 0: box 0 .* has x2 < x1"):
        coco_average_precision([np.zeros((0, 6))], [np.array([[0.5, 0, 0.4, 1, 0]])], 1)
