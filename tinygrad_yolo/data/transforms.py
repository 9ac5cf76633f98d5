"""Detection augmentation: boxes move with the pixels.

Images are PIL RGB images or HWC uint8 NumPy arrays; boxes are (M, 4) float32 normalised xyxy in
[0, 1]; randomness comes from an explicit ``np.random.Generator`` so the loader can make every
sample's augmentation a function of (seed, epoch, index) alone.  The pipelines return the model
input as float32 CHW in [0, 1].

Augmentations follow the YOLOv1 paper: random scaling and translation of up to 20% of the image
size, and exposure/saturation jitter of up to a factor 1.5 in HSV space (plus the usual
horizontal flip).  Scale/translate and the resize to the model's square input are one resampling
step, so images are interpolated only once.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple, Union

import numpy as np
from PIL import Image

ImageLike = Union[Image.Image, np.ndarray]

# Uncovered areas after a zoom-out/shift are grey, the same value voc.py composites alpha onto.
FILL = (127, 127, 127)


def to_pil(image: ImageLike) -> Image.Image:
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an HWC uint8 RGB array, got shape {a.shape} dtype {a.dtype}")
    return Image.fromarray(a, "RGB")


def _check_boxes(boxes) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float32)
    if b.size == 0:
        return np.zeros((0, 4), np.float32)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must have shape (M, 4), got {b.shape}")
    return b


def affine_resize(
    image: ImageLike,
    boxes,
    out_size: Union[int, Tuple[int, int]],
    scale: float = 1.0,
    tx: float = 0.0,
    ty: float = 0.0,
    fill=FILL,
    resample=Image.BILINEAR,
) -> Tuple[Image.Image, np.ndarray]:
    """Scale the image by `scale` about its centre, shift it by (tx, ty) image sizes, and
    resample the result to out_size (an int for square, or (width, height)).

    In normalised coordinates the map is  u = scale * (x - 0.5) + 0.5 + t.  Boxes are mapped
    exactly and *not* clipped (``random_scale_translate`` clips and filters them).  The pixel
    rectangle covered by the image is rounded to whole output pixels and the source region is
    recomputed from the rounded rectangle, so pixels and boxes stay aligned to float precision.
    """
    img = to_pil(image)
    ow, oh = (out_size, out_size) if np.isscalar(out_size) else out_size
    w, h = img.size
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")

    def fwd(x, t):  # input -> output, normalised
        return scale * (x - 0.5) + 0.5 + t

    def inv(u, t):  # output -> input, normalised
        return (u - 0.5 - t) / scale + 0.5

    def clamp(v, hi):
        return min(max(float(v), 0.0), hi)

    # Output pixel rectangle covered by the input image, rounded to whole pixels.
    dx0, dx1 = (round(clamp(fwd(x, tx), 1.0) * ow) for x in (0.0, 1.0))
    dy0, dy1 = (round(clamp(fwd(y, ty), 1.0) * oh) for y in (0.0, 1.0))
    if dx1 <= dx0 or dy1 <= dy0:  # shifted entirely out of view
        out = Image.new("RGB", (ow, oh), fill)
    else:
        src = (clamp(inv(dx0 / ow, tx) * w, w), clamp(inv(dy0 / oh, ty) * h, h),
               clamp(inv(dx1 / ow, tx) * w, w), clamp(inv(dy1 / oh, ty) * h, h))
        out = img.resize((dx1 - dx0, dy1 - dy0), resample, box=src)
        if (dx0, dy0, dx1, dy1) != (0, 0, ow, oh):  # zoomed out or shifted: pad with fill
            canvas = Image.new("RGB", (ow, oh), fill)
            canvas.paste(out, (dx0, dy0))
            out = canvas

    b = _check_boxes(boxes).astype(np.float64)
    b[:, 0::2] = fwd(b[:, 0::2], tx)
    b[:, 1::2] = fwd(b[:, 1::2], ty)
    return out, b.astype(np.float32)


def clip_boxes(boxes, min_visible: float = 0.25) -> Tuple[np.ndarray, np.ndarray]:
    """Clip boxes to [0, 1]; keep those that have at least `min_visible` of their area (and a
    positive width and height) left.  Returns (clipped boxes[keep], keep mask)."""
    b = _check_boxes(boxes)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    c = np.clip(b, 0.0, 1.0)
    cw, ch = c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]
    keep = (cw > 0) & (ch > 0) & (cw * ch >= min_visible * area)
    return c[keep], keep


def random_scale_translate(
    image: ImageLike,
    boxes,
    rng: np.random.Generator,
    out_size: Union[int, Tuple[int, int]],
    scale: float = 0.2,
    translate: float = 0.2,
    min_visible: float = 0.25,
    fill=FILL,
) -> Tuple[Image.Image, np.ndarray, np.ndarray]:
    """YOLOv1's augmentation: zoom by a factor in [1 - scale, 1 + scale] and shift by up to
    `translate` image sizes in x and y, resampled straight to out_size.

    Returns (image, boxes, keep): boxes are clipped to the image and only those with at least
    `min_visible` of their area still inside are returned; apply `keep` to labels and any other
    per-box arrays.
    """
    s = rng.uniform(1.0 - scale, 1.0 + scale)
    tx, ty = rng.uniform(-translate, translate, 2)
    out, b = affine_resize(image, boxes, out_size, s, tx, ty, fill)
    b, keep = clip_boxes(b, min_visible)
    return out, b, keep


def hflip(image: ImageLike, boxes) -> Tuple[ImageLike, np.ndarray]:
    """Mirror left-right (a PIL image stays PIL; an array becomes a reversed view)."""
    b = _check_boxes(boxes)
    flipped = np.stack([1.0 - b[:, 2], b[:, 1], 1.0 - b[:, 0], b[:, 3]], axis=1).astype(np.float32)
    if isinstance(image, Image.Image):
        return image.transpose(Image.FLIP_LEFT_RIGHT), flipped
    return np.asarray(image)[:, ::-1], flipped


def to_chw(image: ImageLike) -> np.ndarray:
    """Image (PIL, HWC uint8, or HWC float in [0, 1]) -> contiguous CHW float32 in [0, 1]."""
    a = np.asarray(to_pil(image)) if isinstance(image, Image.Image) else np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an HWC RGB image, got shape {a.shape}")
    out = np.empty((3,) + a.shape[:2], dtype=np.float32)
    # One pass: transpose + convert + scale, written straight into the planar buffer.
    np.multiply(a.transpose(2, 0, 1), np.float32(1 / 255) if a.dtype == np.uint8 else np.float32(1),
                out=out, casting="unsafe")
    return out


def hsv_scale_chw(x: np.ndarray, saturation: float = 1.0, exposure: float = 1.0) -> np.ndarray:
    """In place on a CHW float32 RGB image in [0, 1]: multiply HSV saturation and value by the
    given factors, clamped at 1 as in HSV space.  Done directly in RGB: with V = max(r, g, b),
    scaling S by f keeps hue and V exactly when every channel moves to V + f * (c - V); scaling V
    is a plain multiply.  Planar layout keeps the per-pixel max/min elementwise (fast)."""
    if saturation == 1.0 and exposure == 1.0:
        return x
    r, g, b = x
    v = np.maximum(np.maximum(r, g), b)
    f = np.float32(saturation)
    if saturation > 1.0:  # S' = min(f * S, 1): cap f where the smallest channel would reach 0
        spread = v - np.minimum(np.minimum(r, g), b)
        f = np.minimum(f, v / np.maximum(spread, np.float32(1e-12), out=spread))
    e = np.float32(exposure)
    if exposure > 1.0:  # V' = min(e * V, 1)
        e = np.minimum(e, np.float32(1) / np.maximum(v, np.float32(1e-12)))
    # (V + f (c - V)) e  =  c (f e) + V (1 - f) e
    x *= f * e
    x += v * ((1 - f) * e)
    return np.clip(x, 0.0, 1.0, out=x)


def hsv_scale(image: ImageLike, saturation: float = 1.0, exposure: float = 1.0) -> np.ndarray:
    """``hsv_scale_chw`` for an HWC image; returns HWC float32 in [0, 1]."""
    return hsv_scale_chw(to_chw(image), saturation, exposure).transpose(1, 2, 0)


def random_factor(rng: np.random.Generator, limit: float) -> float:
    """darknet's rand_scale: a factor in [1/limit, limit], as likely to shrink as to grow."""
    f = rng.uniform(1.0, limit)
    return float(f if rng.random() < 0.5 else 1.0 / f)


def random_hsv(x: np.ndarray, rng: np.random.Generator, saturation: float = 1.5,
               exposure: float = 1.5) -> np.ndarray:
    """In place on a CHW float32 image: random saturation and exposure factors (YOLOv1: 1.5)."""
    return hsv_scale_chw(x, random_factor(rng, saturation), random_factor(rng, exposure))


def resize(image: ImageLike, boxes,
           out_size: Union[int, Tuple[int, int]]) -> Tuple[Image.Image, np.ndarray]:
    """Plain (aspect-stretching) resize; normalised boxes are unchanged."""
    return affine_resize(image, boxes, out_size)


class Transformed(NamedTuple):
    image: np.ndarray  # (3, H, W) float32 in [0, 1]
    boxes: np.ndarray  # (M, 4) float32 normalised xyxy
    labels: np.ndarray  # (M,) int64
    difficult: np.ndarray  # (M,) bool


def _per_box(labels, difficult, m: int):
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if difficult is None:
        difficult = np.zeros(m, dtype=bool)
    difficult = np.asarray(difficult, dtype=bool).reshape(-1)
    if len(labels) != m or len(difficult) != m:
        raise ValueError(f"{m} boxes but {len(labels)} labels and {len(difficult)} difficult flags")
    return labels, difficult


def random_window(image: Image.Image, boxes, rng: np.random.Generator, size: int,
                  centred: float = 0.75, min_visible: float = 0.25):
    """A ``size`` x ``size`` window of the image, at its pixels (no resampling): with probability
    ``centred`` one around a random object (anywhere between 15% and 85% across the window),
    else anywhere, so windows hold objects far more often than the image's area would give.
    Returns (window, boxes relative to it, keep mask)."""
    w, h = image.size
    b = _check_boxes(boxes)
    if len(b) and rng.random() < centred:
        x0, y0, x1, y1 = b[rng.integers(len(b))]
        left = (x0 + x1) / 2 * w - rng.uniform(0.15, 0.85) * size
        top = (y0 + y1) / 2 * h - rng.uniform(0.15, 0.85) * size
    else:
        left, top = rng.uniform(0, w - size), rng.uniform(0, h - size)
    left, top = int(np.clip(round(left), 0, w - size)), int(np.clip(round(top), 0, h - size))
    window = image.crop((left, top, left + size, top + size))
    shifted = (b * [w, h, w, h] - [left, top, left, top]) / size
    out, keep = clip_boxes(shifted.astype(np.float32), min_visible)
    return window, out, keep


def mosaic(parts, rng: np.random.Generator, out_size: int, fill=FILL):
    """Four (image, boxes, labels, difficult) tiled around a random centre, as YOLOv4 and
    ultralytics do: each image scaled so its longer side is ``out_size`` (the scale a plain
    resize gives it), the four placed in the quadrants of a 2x canvas meeting at a centre drawn
    from its middle half, and the ``out_size`` window around that centre cut out. Objects keep
    their size in pixels; a picture holds parts of four scenes. Returns (PIL image, boxes,
    labels, difficult), boxes clipped to the window (those under a quarter visible dropped by
    the caller's clip)."""
    s = int(out_size)
    canvas = Image.new("RGB", (2 * s, 2 * s), fill)
    xc, yc = (int(v) for v in rng.uniform(0.5 * s, 1.5 * s, 2))
    all_boxes, all_labels, all_difficult = [], [], []
    for k, (image, boxes, labels, difficult) in enumerate(parts):
        img = to_pil(image)
        w, h = img.size
        r = s / max(w, h)
        w, h = max(1, round(w * r)), max(1, round(h * r))
        img = img.resize((w, h), Image.BILINEAR)
        # the quadrant's corner at the centre
        x0, y0 = [(xc - w, yc - h), (xc, yc - h), (xc - w, yc), (xc, yc)][k]
        canvas.paste(img, (x0, y0))
        b = _check_boxes(boxes).astype(np.float64)
        all_boxes.append(np.stack([b[:, 0] * w + x0, b[:, 1] * h + y0,
                                   b[:, 2] * w + x0, b[:, 3] * h + y0], axis=1))
        all_labels.append(np.asarray(labels, np.int64).reshape(-1))
        all_difficult.append(np.asarray(difficult, bool).reshape(-1))
    left, top = xc - s // 2, yc - s // 2
    window = canvas.crop((left, top, left + s, top + s))
    b = np.concatenate(all_boxes) if all_boxes else np.zeros((0, 4))
    b = (b - [left, top, left, top]) / s
    out, keep = clip_boxes(b.astype(np.float32))
    return window, out, np.concatenate(all_labels)[keep], np.concatenate(all_difficult)[keep]


class TrainTransform:
    """Scale/translate (resampled to img_size x img_size) -> flip -> HSV jitter -> CHW float.

    Call as ``t(image, boxes, labels, difficult=None, rng=None)``; without `rng` it draws from its
    own generator seeded with `seed` (the DataLoader always passes a per-sample rng).
    """

    def __init__(self, img_size: int, scale: float = 0.2, translate: float = 0.2, flip: float = 0.5,
                 saturation: float = 1.5, exposure: float = 1.5, min_visible: float = 0.25,
                 seed: int = 0, mosaic: float = 0.0, dataset=None, window: Optional[int] = None,
                 centred: float = 0.75):
        self.img_size = int(img_size)
        if window is not None and not 0 < window <= img_size:
            raise ValueError(f"window must lie in (0, img_size = {img_size}], got {window}")
        self.window, self.centred = window, float(centred)
        self.scale, self.translate, self.flip = scale, translate, flip
        self.saturation, self.exposure, self.min_visible = saturation, exposure, min_visible
        self.rng = np.random.default_rng(seed)
        if mosaic and dataset is None:
            raise ValueError("mosaic needs the dataset to draw the other three images from")
        self.mosaic, self.dataset = float(mosaic), dataset

    def __call__(self, image, boxes, labels, difficult=None,
                 rng: Optional[np.random.Generator] = None) -> Transformed:
        rng = self.rng if rng is None else rng
        boxes = _check_boxes(boxes)
        labels, difficult = _per_box(labels, difficult, len(boxes))
        if self.mosaic and rng.random() < self.mosaic:
            others = [self.dataset[int(i)] for i in rng.integers(0, len(self.dataset), 3)]
            tiles = [(image, boxes, labels, difficult)]
            tiles += [(o.image, o.boxes, o.labels, o.difficult) for o in others]
            image, boxes, labels, difficult = mosaic(tiles, rng, self.img_size)
        img, boxes, keep = random_scale_translate(image, boxes, rng, self.img_size, self.scale,
                                                  self.translate, self.min_visible)
        labels, difficult = labels[keep], difficult[keep]
        if rng.random() < self.flip:
            img, boxes = hflip(img, boxes)
        if self.window is not None and self.window < self.img_size:
            img, boxes, keep = random_window(img, boxes, rng, self.window, self.centred,
                                             self.min_visible)
            labels, difficult = labels[keep], difficult[keep]
        x = random_hsv(to_chw(img), rng, self.saturation, self.exposure)
        return Transformed(x, boxes, labels, difficult)

    def __repr__(self) -> str:
        return (f"TrainTransform(img_size={self.img_size}, scale={self.scale}, "
                f"translate={self.translate}, "
                f"flip={self.flip}, saturation={self.saturation}, exposure={self.exposure}, "
                f"min_visible={self.min_visible}, mosaic={self.mosaic}, window={self.window})")


class EvalTransform:
    """Resize to img_size x img_size -> CHW float; boxes/labels pass through unchanged."""

    def __init__(self, img_size: int):
        self.img_size = int(img_size)

    def __call__(self, image, boxes, labels, difficult=None,
                 rng: Optional[np.random.Generator] = None) -> Transformed:
        boxes = _check_boxes(boxes)
        labels, difficult = _per_box(labels, difficult, len(boxes))
        img, _ = resize(image, boxes, self.img_size)
        return Transformed(to_chw(img), boxes.copy(), labels, difficult)

    def __repr__(self) -> str:
        return f"EvalTransform(img_size={self.img_size})"
