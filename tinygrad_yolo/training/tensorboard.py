"""TensorBoard event files in the run folder (``train --tensorboard``), for users who watch runs
that way: every row metrics.jsonl gets also goes to tensorboardX, so the two never disagree.

    train/loss, train/coord, train/size, train/obj, train/noobj, train/class, train/lr
                                                      at each logged step (--log-every)
    val/mAP50 (VOC), val/mAP50_coco, val/mAP50-95     at each validation

`tensorboard --logdir runs` shows every run under runs/ side by side.
"""
from .errors import TrainError

SCALARS = {
    "step": [(k, f"train/{k}") for k in ("loss", "coord", "size", "obj", "noobj", "class", "lr")],
    "epoch": [("map50", "val/mAP50"), ("map50_coco", "val/mAP50_coco"),
              ("map50_95", "val/mAP50-95")],
}


def summary_writer_class():
    """tensorboardX's SummaryWriter, or one line naming the extra that installs it."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise TrainError('--tensorboard needs tensorboardX; pip install '
                         '"tinygrad_yolo[tensorboard]" adds it') from None
    return SummaryWriter


class TensorBoardLog:
    """A run's MetricsLog whose rows also become TensorBoard scalars in ``folder``."""

    def __init__(self, metrics_log, folder):
        self.metrics_log = metrics_log
        self.writer = summary_writer_class()(logdir=str(folder), flush_secs=30)

    def write(self, **row):
        self.metrics_log.write(**row)
        for key, tag in SCALARS.get(row.get("event"), []):
            if row.get(key) is not None:
                self.writer.add_scalar(tag, row[key], row["step"])

    def close(self):
        self.writer.close()
        self.metrics_log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
