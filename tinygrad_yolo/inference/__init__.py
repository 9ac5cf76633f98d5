"""A trained detector at work: its detections on a split, scored; on image files; in pictures.

    evaluate.py   predict (the raw output), and VOC mAP, per-class precision/recall, PR curves
                  and the confusion matrix of a split
    detect.py     detections for image files, folders and globs, saved beside annotated copies
    pictures.py   a run's validation pictures: predicted boxes over the true ones

Training imports this package (validation, the report); nothing here imports training.
"""
from .detect import collect_images, detect
from .evaluate import (DISPLAY_CONF, EVAL_CONF, EvaluationStopped, detect_split, evaluate, predict,
                       score)
from .pictures import validation_pictures

__all__ = ["predict", "detect_split", "score", "evaluate", "EvaluationStopped", "EVAL_CONF",
           "DISPLAY_CONF", "collect_images", "detect", "validation_pictures"]
