"""Which implementation of an op runs: the one place that asks where the arrays live.

Each op family has a table of its implementations by name -- the reference in ops/ (the
definition, on NumPy and CuPy alike), the tuned CPU paths in ops/fast/, the CUDA ones in cuda/ --
and one rule that names the entry for a call, from its arrays: their device and, for conv2d,
the shape of the convolution. nn.functional and the optimizers ask the rule once per op call;
tests take entries by name and check each against the reference. A call the op will refuse
goes to the reference, whose checks raise the error under the op's own name. An entry is written
"module:attribute" and imported when first used, so importing the package loads neither cuda/
nor CuPy.
"""
import importlib
import sys

from .backend import is_cuda_array
from .ops.geometry import conv_window, pool_window
from .ops.norm import check_batch_norm

# ---- conv2d: Conv2d and its subclasses ---------------------------------------------------------
CONV2D = {
    # im2col and one GEMM, col2im(Wᵀ @ gy) back: the definition
    "reference": "tinygrad_yolo.ops.conv:Conv2d",
    # small maps: the batch along the im2col matrix's columns, built in cached tiles
    "tiled": "tinygrad_yolo.ops.fast.conv_tiled:TiledConv2d",
    # large maps: one image's columns at a time; at stride 1 at a wide row pitch where it is cheap
    "images": "tinygrad_yolo.ops.fast.conv_images:ImagesConv2d",
    # the images path at the wide row pitch for every stride-1 convolution
    "images-wide": "tinygrad_yolo.ops.fast.conv_images:WideImagesConv2d",
    # 1x1 kernels without padding: x is the column matrix
    "pointwise": "tinygrad_yolo.ops.fast.conv_pointwise:PointwiseConv2d",
    # CUDA: the im2col kernel and cuBLAS, columns a chunk of images at a time
    "cuda": "tinygrad_yolo.cuda.conv:CudaConv2d",
    "cuda-pointwise": "tinygrad_yolo.cuda.conv:CudaPointwiseConv2d",
}
IMAGES_MIN_PIXELS = 784  # output maps of 28x28 and more take "images" on the CPU


def conv2d_path(x, w, stride, padding, dilation):
    """The CONV2D entry for a convolution of arrays x and w: "reference" where the op will refuse
    the arguments (its checks name the problem) or an input is empty; 1x1 kernels without padding
    "pointwise" ("cuda-pointwise" on CUDA); other convolutions on CUDA "cuda"; on the CPU "images"
    for output maps of at least IMAGES_MIN_PIXELS, "tiled" for smaller ones, where one image's
    columns would make a narrow, slow GEMM."""
    try:
        win = conv_window(x.shape, w.shape, None, stride, padding, dilation)
    except (TypeError, ValueError):
        return "reference"
    if x.size == 0 or w.size == 0:
        return "reference"
    pointwise = win.kernel == (1, 1) and win.padding == (0, 0)
    if is_cuda_array(x):
        return "cuda-pointwise" if pointwise else "cuda"
    if pointwise:
        return "pointwise"
    return "images" if win.Ho * win.Wo >= IMAGES_MIN_PIXELS else "tiled"


# ---- pooling: MaxPool2d, AvgPool2d and their subclasses -----------------------------------------
MAX_POOL2D = {
    "reference": "tinygrad_yolo.ops.pool:MaxPool2d",                # a loop over the kernel taps
    "separable": "tinygrad_yolo.ops.fast.pool:SeparableMaxPool2d",  # rows, then columns; cached
    "cuda": "tinygrad_yolo.cuda.pool:CudaMaxPool2d",                # kernels/maxpool.cu
}
AVG_POOL2D = {
    "reference": "tinygrad_yolo.ops.pool:AvgPool2d",                       # a loop over the taps
    "channels-last": "tinygrad_yolo.ops.fast.pool:ChannelsLastAvgPool2d",  # taps over long rows
}


def max_pool2d_path(x, kernel_size, stride, padding):
    """The MAX_POOL2D entry for array x: "cuda" on CUDA, "separable" on the CPU; "reference"
    where the op will refuse the arguments (its checks name the problem)."""
    try:
        pool_window("max_pool2d", x.shape, kernel_size, stride, padding)
    except (TypeError, ValueError):
        return "reference"
    return "cuda" if is_cuda_array(x) else "separable"


def avg_pool2d_path(x, kernel_size, stride, padding):
    """The AVG_POOL2D entry for array x: "channels-last" on the CPU; the reference on CUDA (its
    taps are CuPy array operations) and where the op will refuse the arguments."""
    try:
        pool_window("avg_pool2d", x.shape, kernel_size, stride, padding)
    except (TypeError, ValueError):
        return "reference"
    return "reference" if is_cuda_array(x) else "channels-last"


# ---- batch norm: BatchNorm, its subclass, the fused CUDA op ------------------------------------
BATCH_NORM = {
    "reference": "tinygrad_yolo.ops.norm:BatchNorm",            # the formulas, pass by pass
    "chunked": "tinygrad_yolo.ops.fast.norm:ChunkedBatchNorm",  # few passes, in cached chunks
    # CUDA: three kernels each way; adds a residual and applies a ReLU in the same kernels
    "cuda": "tinygrad_yolo.cuda.norm:FusedBatchNorm",
}


def batch_norm_fused(x):
    """Whether batch norm of array x runs as BATCH_NORM["cuda"], which also takes a residual add
    and a ReLU (nn.functional.batch_norm's residual and relu, nn/fused.py's bn_act)."""
    return is_cuda_array(x)


def batch_norm_path(x, weight, bias, running_mean, running_var, training):
    """The BATCH_NORM entry for arrays x, ...: "cuda" on CUDA; on the CPU "chunked", or
    "reference" where the op will refuse the call (its checks name the problem)."""
    if batch_norm_fused(x):
        return "cuda"
    try:
        check_batch_norm(x, weight, bias, running_mean, running_var, training)
    except (ValueError, RuntimeError):
        return "reference"
    return "chunked"


# ---- the optimizers' update of one parameter ----------------------------------------------------
SGD_UPDATE = {
    "reference": "tinygrad_yolo.optim.sgd:sgd_update",   # array operations
    "cuda": "tinygrad_yolo.cuda.optim:sgd_update",       # one kernel per parameter
}
ADAM_UPDATE = {
    "reference": "tinygrad_yolo.optim.adam:adam_update",
    "cuda": "tinygrad_yolo.cuda.optim:adam_update",
}


def optimizer_path(p):
    """The SGD_UPDATE / ADAM_UPDATE entry for parameter array p: "cuda" on CUDA, else
    "reference"."""
    return "cuda" if is_cuda_array(p) else "reference"


# ---- looking an entry up -------------------------------------------------------------------------
def resolve(table, name):
    """The implementation that ``table`` lists under ``name``, imported on first use."""
    if name not in table:
        raise ValueError(f"no implementation named {name!r}: expected one of {', '.join(table)}")
    module, attribute = table[name].split(":")
    # sys.modules first: import_module's own lookup costs more than the small ops it picks for
    return getattr(sys.modules.get(module) or importlib.import_module(module), attribute)
