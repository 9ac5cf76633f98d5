"""The ops: one file per family, each Function's forward and backward side by side.

Every op works on raw numpy or cupy arrays; ``xp = array_module(x)`` picks the module. Each file
here is the definition a student reads first (conv.py: im2col and a GEMM); geometry.py checks
the arguments of every window op (conv, im2col, pooling) and computes their output sizes once;
fast/ holds the tuned CPU paths and the few GPU-specific choices, each checked against these.
"""
