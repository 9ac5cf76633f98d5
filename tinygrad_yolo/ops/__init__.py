"""The ops: one file per family, each Function's forward and backward side by side.

Every op works on raw numpy or cupy arrays; ``xp = array_module(x)`` picks the module. Each file
here is the definition a student reads first (conv.py: im2col and a GEMM), the reference every
faster path is checked against; geometry.py checks the arguments of every window op (conv,
im2col, pooling) and computes their output sizes once. The tuned CPU paths are in fast/, the
CUDA ones in tinygrad_yolo/cuda/, and tinygrad_yolo/dispatch.py picks one per call.
"""
