"""The speed: tuned paths of the ops in tinygrad_yolo/ops/, each checked against the reference.

    choices.py       what conv2d's paths decide, each decided once: the path, dx as a
                     convolution, dW's GEMM orientation
    conv_tiled.py    conv2d on small maps: the batch along the im2col columns, in cached tiles
    conv_images.py   conv2d on large maps: per-image im2col straight from NCHW, wide columns
    cuda_conv.py     conv2d on CUDA: cuBLAS strided-batched GEMMs, columns in chunks, dx as a
                     convolution of gy (an im2col beats col2im's gather)
    phases.py        stride phases: padded batch-last copies whose kernel taps are unit-stride
    pool.py          max-pool as two separable passes in chunks; average pooling channels-last
    norm.py          batch norm's chunked passes and per-channel helpers (fused kernels on CUDA)
"""
