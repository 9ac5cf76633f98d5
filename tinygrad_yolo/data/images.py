"""Reading image files the way labelling tools show them: any mode to RGB, EXIF rotation
applied, and broken or oversized files refused with a message naming the file.

EXIF orientation.  A phone stores the sensor's pixels as they came and a tag saying how to
turn them (orientation 6 = "rotate 90° clockwise to view").  Labelling tools, Roboflow and
ultralytics (``exif_size`` / ``exif_transpose``) label and train on the image *as displayed*,
so every reader here does the same: ``image_info`` reports the displayed size and ``open_rgb``
returns the displayed pixels.  (A reader that knows its boxes refer to the stored pixels, e.g.
a VOC ``<size>`` that matches only the stored size, passes ``exif=False``.)
"""

from __future__ import annotations

import os
import warnings
from typing import NamedTuple, Optional, Union

import numpy as np
from PIL import Image, ImageOps

from .dataset import DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# Fully transparent pixels of RGBA/LA/palette images are composited onto this grey: their stored
# colour is arbitrary (often black), and a neutral grey is what the augmentation pads with too.
ALPHA_BACKGROUND = (127, 127, 127)

# Pillow's own decompression-bomb limit (~89 M pixels); an image above it is refused, not decoded.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485

_ORIENTATION_TAG = 0x0112
_SWAPS_SIDES = {5, 6, 7, 8}  # orientations that turn the image by 90° (width and height swap)


def is_image_file(name: Union[str, os.PathLike]) -> bool:
    return os.path.splitext(os.fspath(name))[1].lower() in IMAGE_EXTENSIONS


class ImageInfo(NamedTuple):
    width: int         # as displayed (after the EXIF rotation)
    height: int
    orientation: int   # the EXIF orientation tag, 1 when there is none
    stored_width: int  # as the pixels are stored
    stored_height: int


def _orientation(img: Image.Image) -> int:
    try:
        value = int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # a damaged EXIF block is no reason to refuse the image
        return 1
    return value if 1 <= value <= 8 else 1


def _check_pixels(path, w: int, h: int) -> None:
    if w < 1 or h < 1:
        raise DatasetError(f"image {os.fspath(path)!r} has no pixels ({w}x{h})")
    if w * h > MAX_PIXELS:
        raise DatasetError(f"image {os.fspath(path)!r} is {w}x{h} = {w * h:,} pixels, over the "
                           f"{MAX_PIXELS:,}-pixel limit for one image (a decompression bomb, or "
                           f"far larger than a detector needs: downscale it)")


def image_info(path: Union[str, os.PathLike]) -> ImageInfo:
    """Size and orientation from the file's header, without decoding the pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                sw, sh = img.size
                orientation = _orientation(img)
    except FileNotFoundError:
        raise DatasetError(f"image file {os.fspath(path)!r} does not exist") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DatasetError(f"image {os.fspath(path)!r} is over the {MAX_PIXELS:,}-pixel limit for "
                           f"one image (a decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError) as e:  # PIL raises all three for bad files
        raise DatasetError(f"cannot read image {os.fspath(path)!r}: {e}") from None
    _check_pixels(path, sw, sh)
    w, h = (sh, sw) if orientation in _SWAPS_SIDES else (sw, sh)
    return ImageInfo(w, h, orientation, sw, sh)


def open_rgb(path: Union[str, os.PathLike], draft_size: Optional[int] = None,
             exif: bool = True) -> Image.Image:
    """Decode an image file to an RGB PIL image as displayed (EXIF rotation applied unless
    ``exif=False``), whatever its mode; DatasetError names the file.

    draft_size: let the JPEG decoder downscale by 1/2, 1/4, 1/8 while both sides stay >=
    draft_size (faster for big photos; boxes are normalised, so they are unaffected).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _check_pixels(path, *img.size)
                if draft_size is not None and img.format == "JPEG":
                    img.draft("RGB", (draft_size, draft_size))
                img.load()
                # Pillow's exif_transpose: the rotation labelling tools and ultralytics apply
                rgb = _to_rgb(ImageOps.exif_transpose(img) if exif else img)
    except FileNotFoundError:
        raise DatasetError(f"image file {os.fspath(path)!r} does not exist") from None
    except DatasetError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DatasetError(f"image {os.fspath(path)!r} is over the {MAX_PIXELS:,}-pixel limit for "
                           f"one image (a decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated data shows up here, at decode
        raise DatasetError(f"cannot decode image {os.fspath(path)!r}: {e}") from None
    return rgb


def verify_image(path: Union[str, os.PathLike], exif: bool = True) -> None:
    """Decode the whole file (small: JPEGs at 1/8 scale) so a truncated or corrupt image is found
    now, not when the loader reaches it mid-training. Raises DatasetError naming the file."""
    open_rgb(path, draft_size=32, exif=exif)


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img.copy() if img.readonly else img
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        # 16-bit/32-bit grey: PIL's convert("RGB") clips at 255, so rescale to 8 bits ourselves.
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(a.max()), 255.0)
        a8 = np.clip(a * (255.0 / top), 0, 255).round().astype(np.uint8)
        return Image.fromarray(np.repeat(a8[:, :, None], 3, axis=2), "RGB")
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, ...

