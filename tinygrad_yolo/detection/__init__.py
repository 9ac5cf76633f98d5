"""YOLOv1 detection math: box formats and IoU, target encoding, decoding and
NMS, VOC and COCO mAP, and the YOLOv1 loss."""
from .boxes import box_area, box_iou, cxcywh_to_xyxy, elementwise_box_iou, xyxy_to_cxcywh
from .coco_metrics import coco_average_precision
from .loss import YOLOv1Loss
from .metrics import average_precision, confusion_matrix, mean_average_precision
from .postprocess import batched_nms, decode, nms, postprocess
from .targets import encode_batch, encode_targets

__all__ = ["box_area", "box_iou", "elementwise_box_iou", "cxcywh_to_xyxy", "xyxy_to_cxcywh",
           "encode_targets", "encode_batch", "decode", "nms", "batched_nms", "postprocess",
           "average_precision", "mean_average_precision", "confusion_matrix", "YOLOv1Loss",
           "coco_average_precision"]
