"""Augmentations keep boxes on the pixels they describe; HSV jitter matches HSV maths and stays in
range."""

import colorsys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tinygrad_yolo.data.transforms import (
    EvalTransform,
    TrainTransform,
    affine_resize,
    clip_boxes,
    hflip,
    hsv_scale,
    random_scale_translate,
    to_chw,
)


def rect_image(w, h, box_px, fg=255, bg=0):
    """HWC uint8 image with the pixel rectangle [x0, x1) x [y0, y1) filled; and its normalised
    box."""
    a = np.full((h, w, 3), bg, np.uint8)
    x0, y0, x1, y1 = box_px
    a[y0:y1, x0:x1] = fg
    return a, np.array([[x0 / w, y0 / h, x1 / w, y1 / h]], np.float32)


def bright_extent(gray, threshold):
    """Continuous pixel extent (x0, y0, x1, y1) of the pixels above threshold, or None."""
    ys, xs = np.nonzero(gray > threshold)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


def test_hflip_is_pixel_exact_for_pil_and_numpy():
    a, box = rect_image(37, 23, (3, 5, 15, 20))
    for img in (a, Image.fromarray(a)):
        out, b = hflip(img, box)
        ext = bright_extent(np.asarray(out)[..., 0], 127)
        np.testing.assert_allclose(ext, b[0] * [37, 23, 37, 23], atol=1e-4)
    np.testing.assert_allclose(hflip(a, hflip(a, box)[1])[1], box, atol=1e-6)


@given(
    scale=st.floats(0.8, 1.2),
    tx=st.floats(-0.2, 0.2),
    ty=st.floats(-0.2, 0.2),
    rect=st.tuples(st.integers(0, 40), st.integers(0, 30), st.integers(14, 50),
                   st.integers(14, 40)),
    out=st.sampled_from([48, 64, 101, (60, 40)]),
)
def test_affine_resize_moves_boxes_with_pixels(scale, tx, ty, rect, out):
    x0, y0, w, h = rect
    box_px = (x0, y0, min(x0 + w, 90), min(y0 + h, 70))
    a, box = rect_image(90, 70, box_px)
    img, b = affine_resize(a, box, out, scale, tx, ty, fill=(0, 0, 0))
    ow, oh = img.size
    assert (ow, oh) == ((out, out) if isinstance(out, int) else out)
    expected = np.clip(b[0], 0, 1) * [ow, oh, ow, oh]
    ext = bright_extent(np.asarray(img)[..., 0], 127)
    if (expected[2:] - expected[:2]).min() < 1.5:  # pushed (almost) off the image
        return
    assert ext is not None
    # The rectangle's half-intensity edges land within a pixel of the mapped box.
    np.testing.assert_allclose(ext, expected, atol=1.0)


def test_affine_identity_is_plain_resize():
    a, box = rect_image(50, 40, (10, 10, 30, 20))
    img, b = affine_resize(a, box, 25)
    resized = Image.fromarray(a).resize((25, 25), Image.BILINEAR)
    np.testing.assert_array_equal(np.asarray(img), np.asarray(resized))
    np.testing.assert_array_equal(b, box)


def test_clip_boxes_drops_mostly_hidden_boxes():
    boxes = np.array([
        [0.2, 0.2, 0.4, 0.4],  # inside
        [0.9, 0.1, 1.3, 0.3],  # 25% visible
        [0.9, 0.1, 1.5, 0.3],  # 1/6 visible
        [1.1, 0.1, 1.3, 0.3],  # outside
        [-0.5, -0.5, 1.5, 1.5],  # covers the image: 25% visible
    ], np.float32)
    clipped, keep = clip_boxes(boxes, min_visible=0.25)
    assert keep.tolist() == [True, True, False, False, True]
    np.testing.assert_allclose(clipped, [[0.2, 0.2, 0.4, 0.4], [0.9, 0.1, 1.0, 0.3], [0, 0, 1, 1]])
    empty, keep0 = clip_boxes(np.zeros((0, 4)))
    assert empty.shape == (0, 4) and keep0.shape == (0,)
    with pytest.raises(ValueError, match=r"\(M, 4\)"):
        clip_boxes(np.zeros((2, 3)))


def test_random_scale_translate_keeps_visible_boxes_on_their_pixels():
    a, box = rect_image(80, 60, (60, 8, 78, 30))  # near the right edge: some shifts push it out
    kept = dropped = 0
    for seed in range(40):
        img, b, keep = random_scale_translate(a, box, np.random.default_rng(seed), 64,
                                              fill=(0, 0, 0))
        # The same draws, replayed: zoom, then shift in x and y.
        replay = np.random.default_rng(seed)
        s = replay.uniform(0.8, 1.2)
        tx, ty = replay.uniform(-0.2, 0.2, 2)
        full = affine_resize(a, box, 64, s, tx, ty)[1][0] * 64  # unclipped, in output pixels
        visible = np.clip(full, 0, 64)
        frac = np.prod(np.maximum(visible[2:] - visible[:2], 0)) / np.prod(full[2:] - full[:2])
        assert keep[0] == (frac >= 0.25)
        ext = bright_extent(np.asarray(img)[..., 0], 127)
        if keep[0]:
            kept += 1
            np.testing.assert_allclose(b[0] * 64, visible, atol=1e-3)
        else:
            dropped += 1
            assert b.shape == (0, 4)
        if ext is not None and (visible[2:] - visible[:2]).min() >= 1.5:
            np.testing.assert_allclose(ext, visible, atol=1.0)  # the pixels are where the box says
    assert kept > 0 and dropped > 0


def test_hsv_matches_colorsys_reference():
    rng = np.random.default_rng(0)
    img = rng.random((6, 7, 3)).astype(np.float32)
    img[0, 0] = 0.0  # black
    img[0, 1] = 0.5  # grey: no saturation
    img[0, 2] = [1.0, 0.0, 0.0]  # fully saturated
    for sat in (0.5, 0.8, 1.0, 1.4, 3.0):
        for exp in (0.6, 1.0, 1.5, 4.0):
            out = hsv_scale(img, sat, exp)
            ref = np.empty_like(img)
            for y, x in np.ndindex(6, 7):
                h, s, v = colorsys.rgb_to_hsv(*img[y, x].astype(np.float64))
                ref[y, x] = colorsys.hsv_to_rgb(h, min(s * sat, 1.0), min(v * exp, 1.0))
            np.testing.assert_allclose(out, ref, atol=2e-6,
                                       err_msg=f"saturation {sat} exposure {exp}")


def test_hsv_and_train_transform_stay_in_unit_range():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    for sat, exp in ((1.5, 1.5), (5.0, 5.0), (0.2, 0.2), (1.5, 1 / 1.5)):
        out = hsv_scale(img, sat, exp)
        assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0
    t = TrainTransform(32)
    for seed in range(10):
        x = t(img, np.zeros((0, 4)), np.zeros(0, np.int64), rng=np.random.default_rng(seed)).image
        assert x.shape == (3, 32, 32) and x.dtype == np.float32 and x.flags.c_contiguous
        assert 0.0 <= x.min() and x.max() <= 1.0


def test_train_transform_keeps_box_on_rectangle_through_flip_scale_translate_hsv():
    a, box = rect_image(90, 70, (20, 15, 60, 45), fg=255, bg=127)  # background = the padding grey
    t = TrainTransform(64)
    for seed in range(30):
        out = t(a, box, [7], [True], rng=np.random.default_rng(seed))
        assert out.labels.tolist() == [7] and out.difficult.tolist() == [True]  # never pushed out
        v = out.image.max(axis=0)
        ext = bright_extent(v, (v.min() + v.max()) / 2)
        np.testing.assert_allclose(ext, out.boxes[0] * 64, atol=1.0)


def test_train_transform_flip_probability_mirrors_image_and_boxes():
    a = np.random.default_rng(4).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    box = np.array([[0.1, 0.2, 0.5, 0.6]], np.float32)
    never, always = TrainTransform(24, flip=0.0), TrainTransform(24, flip=1.0)
    for seed in range(5):  # both draw the same random numbers; only the flip decision differs
        r0 = never(a, box, [1], rng=np.random.default_rng(seed))
        r1 = always(a, box, [1], rng=np.random.default_rng(seed))
        np.testing.assert_array_equal(r1.image, r0.image[:, :, ::-1])
        x0, y0, x1, y1 = r0.boxes.T
        np.testing.assert_allclose(r1.boxes, np.stack([1 - x1, y0, 1 - x0, y1], axis=1), atol=1e-6)


def test_train_transform_filters_labels_and_difficult_with_boxes():
    img = np.zeros((50, 50, 3), np.uint8)
    boxes = np.array([[0.4, 0.4, 0.6, 0.6], [0.93, 0.9, 1.0, 1.0]], np.float32)
    t = TrainTransform(32)
    seen = set()
    for seed in range(40):
        out = t(img, boxes, [3, 11], [False, True], rng=np.random.default_rng(seed))
        assert len(out.boxes) == len(out.labels) == len(out.difficult)
        assert out.labels[0] == 3 and not out.difficult[0]  # the central box always survives
        assert out.labels.tolist() in ([3], [3, 11])
        assert out.difficult.tolist() == [lab == 11 for lab in out.labels]
        seen.add(len(out.labels))
    assert seen == {1, 2}
    with pytest.raises(ValueError, match="2 boxes but 1 labels"):
        t(img, boxes, [3])


def test_transforms_are_deterministic_given_the_rng_and_accept_pil_or_numpy():
    a = np.random.default_rng(2).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    box = np.array([[0.1, 0.2, 0.5, 0.6]], np.float32)
    t = TrainTransform(24)
    r1 = t(a, box, [1], rng=np.random.default_rng(9))
    r2 = t(Image.fromarray(a), box, [1], rng=np.random.default_rng(9))
    np.testing.assert_array_equal(r1.image, r2.image)
    np.testing.assert_array_equal(r1.boxes, r2.boxes)
    r3 = t(a, box, [1], rng=np.random.default_rng(10))
    assert not np.array_equal(r1.image, r3.image)


def test_eval_transform_is_a_plain_resize():
    a = np.random.default_rng(3).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    box = np.array([[0.1, 0.2, 0.5, 0.6]], np.float32)
    out = EvalTransform(20)(a, box, [4], [True])
    resized = Image.fromarray(a).resize((20, 20), Image.BILINEAR)
    expected = np.asarray(resized).transpose(2, 0, 1) / 255
    np.testing.assert_allclose(out.image, expected, atol=1e-6)
    np.testing.assert_array_equal(out.boxes, box)
    assert out.labels.tolist() == [4] and out.difficult.tolist() == [True]
    np.testing.assert_allclose(to_chw(a), a.transpose(2, 0, 1) / 255, atol=1e-7)


def test_mosaic_keeps_every_box_on_its_rectangle_at_its_pixel_size():
    from tinygrad_yolo.data.transforms import mosaic
    parts = []
    for k, box in enumerate([(4, 4, 20, 16), (30, 10, 50, 30), (8, 30, 24, 50), (40, 40, 60, 60)]):
        img, b = rect_image(64, 64, box)
        parts.append((img, b, np.array([k]), np.array([False])))
    for seed in range(20):
        out, boxes, labels, difficult = mosaic(parts, np.random.default_rng(seed), 64)
        a = np.asarray(out)
        assert out.size == (64, 64) and len(boxes) == len(labels) == len(difficult)
        for (x0, y0, x1, y1), k in zip(boxes * 64, labels):
            side = {0: (16, 12), 1: (20, 20), 2: (16, 20), 3: (20, 20)}[int(k)]
            # never scaled: pixels stay pixels
            assert x1 - x0 <= side[0] + 1e-4 and y1 - y0 <= side[1] + 1e-4
            inside = a[int(round(y0)):int(round(y1)), int(round(x0)):int(round(x1))]
            assert inside.size and (inside == 255).all()  # the box still covers its white rectangle


def test_train_transform_with_mosaic_is_deterministic_and_draws_from_the_dataset():
    class Four:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            img, b = rect_image(64, 48, (10 + i, 10, 30, 30))
            return type("S", (), dict(image=img, boxes=b, labels=np.array([i]),
                                      difficult=np.array([False])))

    t = TrainTransform(64, mosaic=1.0, dataset=Four())
    img, b = rect_image(64, 48, (10, 10, 30, 30))
    a = t(img, b, np.array([0]), rng=np.random.default_rng(3))
    c = t(img, b, np.array([0]), rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a.image, c.image)
    np.testing.assert_array_equal(a.boxes, c.boxes)
    assert a.image.shape == (3, 64, 64) and len(a.boxes) >= 1
    with pytest.raises(ValueError, match="mosaic needs the dataset"):
        TrainTransform(64, mosaic=0.5)


def test_random_window_cuts_pixels_and_boxes_alike_and_finds_the_objects():
    from tinygrad_yolo.data.transforms import random_window
    img, b = rect_image(128, 96, (90, 60, 110, 80))
    hits = 0
    for seed in range(30):
        out, boxes, keep = random_window(Image.fromarray(img), b, np.random.default_rng(seed), 48, centred=0.75)
        a = np.asarray(out)
        assert out.size == (48, 48)
        if keep[0]:
            hits += 1
            x0, y0, x1, y1 = np.round(boxes[0] * 48).astype(int)
            assert (a[y0:y1, x0:x1] == 255).all() and a.sum() == (x1 - x0) * (y1 - y0) * 3 * 255
    assert hits >= 15  # centred on the object three times in four, hit by chance now and then
    t = TrainTransform(64, window=32)
    assert t(img, b, np.array([0]), rng=np.random.default_rng(0)).image.shape == (3, 32, 32)
    with pytest.raises(ValueError, match="window"):
        TrainTransform(64, window=96)
