"""Validation pictures: predicted boxes (coloured, with class and score) over the true ones
(white), at a size where the labels stay readable however large the photo."""
import numpy as np

from ..data import EvalTransform
from ..detection import postprocess
from .evaluate import DISPLAY_CONF, predict

MAX_SIDE = 1024  # pictures are scaled down to this: a 4000-px phone photo is no use at full size


def validation_pictures(run, model, dataset, device, n_images=4):
    from ..viz import draw_detections
    transform = EvalTransform(model.img_size)
    written = []
    # spread over the split, not only its first images
    picked = np.linspace(0, len(dataset) - 1, min(n_images, len(dataset))).astype(int)
    for k, i in enumerate(np.unique(picked)):
        sample = dataset[int(i)]
        x = transform(sample.image, sample.boxes, sample.labels).image[None]
        det = postprocess(predict(model, x, device), S=model.S, B=model.B, C=model.C,
                          conf_threshold=DISPLAY_CONF, iou_threshold=0.5)[0]
        truth = np.concatenate([sample.boxes, sample.labels[:, None]], axis=1)
        image = sample.image
        if max(image.size) > MAX_SIDE:
            scale = MAX_SIDE / max(image.size)
            image = image.resize((max(1, round(image.size[0] * scale)),
                                  max(1, round(image.size[1] * scale))))
        path = run / f"val_{k}.jpg"
        draw_detections(image, det, dataset.classes, truth).save(path, quality=90)
        written.append(path)
    return written
