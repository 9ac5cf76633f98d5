// The kernels of kernels/*.cu compiled for the host (see cuda_host_shim.h) and exported with
// C linkage for ctypes: host_<kernel>_<f32|f64>(grid_x, grid_y, block_x, <the kernel's arguments>).
#include "cuda_host_shim.h"

#include "im2col.cu"
#include "col2im.cu"
#include "maxpool.cu"

#define GEOMETRY long long NC, int H, int W, int Ho, int Wo, int kh, int kw, int sh, int sw, int ph, int pw
#define GEOMETRY_ARGS NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw

#define EXPORT_KERNELS(T, SUFFIX)                                                                  \
    extern "C" void host_im2col_##SUFFIX(unsigned gx, unsigned gy, unsigned bx, const T* x, T* col, \
                                         GEOMETRY, int dh, int dw, int C, long long image_stride,  \
                                         long long tap_stride)                                     \
    {                                                                                              \
        host_launch(gx, gy, bx, [&] {                                                              \
            im2col_kernel<T>(x, col, GEOMETRY_ARGS, dh, dw, C, image_stride, tap_stride);          \
        });                                                                                        \
    }                                                                                              \
    extern "C" void host_col2im_##SUFFIX(unsigned gx, unsigned gy, unsigned bx, const T* col, T* x, \
                                         GEOMETRY, int dh, int dw)                                 \
    {                                                                                              \
        host_launch(gx, gy, bx, [&] { col2im_kernel<T>(col, x, GEOMETRY_ARGS, dh, dw); });         \
    }                                                                                              \
    extern "C" void host_max_pool2d_forward_##SUFFIX(unsigned gx, unsigned gy, unsigned bx,         \
                                                     const T* x, T* y, int* argmax, GEOMETRY)      \
    {                                                                                              \
        host_launch(gx, gy, bx, [&] { max_pool2d_forward_kernel<T>(x, y, argmax, GEOMETRY_ARGS); }); \
    }                                                                                              \
    extern "C" void host_max_pool2d_backward_##SUFFIX(unsigned gx, unsigned gy, unsigned bx,        \
                                                      const T* gy_, const int* argmax, T* gx_,     \
                                                      GEOMETRY)                                    \
    {                                                                                              \
        host_launch(gx, gy, bx, [&] { max_pool2d_backward_kernel<T>(gy_, argmax, gx_, GEOMETRY_ARGS); }); \
    }

EXPORT_KERNELS(float, f32)
EXPORT_KERNELS(double, f64)
