"""The speed: tuned CPU paths of the ops in tinygrad_yolo/ops/, each checked against the reference."""
