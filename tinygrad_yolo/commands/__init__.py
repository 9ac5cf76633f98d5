"""Subcommands of `tinygrad-yolo` (see tinygrad_yolo/cli.py)."""
