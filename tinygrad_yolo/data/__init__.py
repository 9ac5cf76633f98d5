"""Data layer: readers for every common layout (VOC root, VOC XML folders, YOLO txt + data.yaml,
COCO JSON), the synthetic shapes dataset, augmentation, threaded batch loader.

Independent of the autograd engine: NumPy + Pillow only.  Boxes outside the XML files are
normalised xyxy float32 in [0, 1]; labels are int64.
"""

from .loader import Batch, DataLoader, DataLoaderError, epoch_order, sample_rng
from .synthetic import (
    COLORS,
    SHAPES,
    SYNTHETIC_CLASSES,
    ensure_synthetic_voc,
    generate_synthetic_voc,
    render_image,
)
from .transforms import (
    EvalTransform,
    TrainTransform,
    Transformed,
    affine_resize,
    clip_boxes,
    hflip,
    hsv_scale,
    hsv_scale_chw,
    random_hsv,
    random_scale_translate,
    resize,
    to_chw,
)
from .dataset import DatasetError, DetectionDataset, Record, Sample, parse_classes
from .images import image_info, open_rgb, verify_image
from .layouts import DataSource, open_dataset
from .voc import VOC_CLASSES, VOCDataset

__all__ = [
    "VOC_CLASSES", "DatasetError", "Sample", "Record", "DetectionDataset", "VOCDataset", "open_rgb",
    "image_info", "verify_image", "parse_classes", "DataSource", "open_dataset",
    "SHAPES", "COLORS", "SYNTHETIC_CLASSES", "generate_synthetic_voc", "ensure_synthetic_voc",
    "render_image",
    "TrainTransform", "EvalTransform", "Transformed", "affine_resize", "random_scale_translate",
    "clip_boxes", "hflip", "hsv_scale", "hsv_scale_chw", "random_hsv", "resize", "to_chw",
    "DataLoader", "DataLoaderError", "Batch", "sample_rng", "epoch_order",
]
