"""The speed on the CPU: tuned paths of the ops in tinygrad_yolo/ops/, each a subclass of the
reference op with its own forward and backward, each checked against it; dispatch.py picks one.

    conv_tiled.py      TiledConv2d: small maps, the batch along the im2col columns, cached tiles
    conv_images.py     ImagesConv2d, WideImagesConv2d: large maps, per-image im2col from NCHW
    conv_pointwise.py  PointwiseConv2d: 1x1 kernels without padding, no im2col (CUDA's too)
    choices.py         what conv2d's paths decide inside a call: dx as a convolution, dW's GEMM
                       orientation
    pool.py            SeparableMaxPool2d (two passes, in chunks), ChannelsLastAvgPool2d
    norm.py            ChunkedBatchNorm: batch norm's passes in cache-sized chunks
    phases.py          stride phases: padded batch-last copies whose kernel taps are unit-stride
    workspace.py       reusable scratch buffers, and the chunk size of multi-pass ops
"""
