// kernels/batchnorm.cu and kernels/optim.cu compiled for the host (see cuda_host_shim.h), exported
// with C linkage for ctypes: host_<kernel>_<f32|f64>(grid_x, grid_y, block_x, <the kernel's
// arguments>). tests/test_fused_kernels.py calls them through kernels/fused.py's own launches.
#include <cmath>
using std::sqrt;
#include "cuda_host_shim.h"

#include "batchnorm.cu"
#include "optim.cu"

#define EXPORT(NAME, SUFFIX, T, PARAMS, ARGS)                                                  \
    extern "C" void host_##NAME##_##SUFFIX(unsigned gx, unsigned gy, unsigned bx, PARAMS)     \
    {                                                                                          \
        host_launch(gx, gy, bx, [&] { NAME<T> ARGS; });                                       \
    }
#define EXPORT_WARPS(NAME, SUFFIX, T, PARAMS, ARGS)  /* kernels with warp shuffles */          \
    extern "C" void host_##NAME##_##SUFFIX(unsigned gx, unsigned gy, unsigned bx, PARAMS)     \
    {                                                                                          \
        host_launch_warps(gx, gy, bx, [&] { NAME<T> ARGS; });                                 \
    }
#define P(...) __VA_ARGS__

#define EXPORT_ALL(T, SUFFIX)                                                                  \
    EXPORT(bn_partial_stats_kernel, SUFFIX, T,                                                 \
           P(const T* x, T* pm, T* pm2, long long N, int C, long long L, int Pn),              \
           (x, pm, pm2, N, C, L, Pn))                                                          \
    EXPORT_WARPS(bn_finalize_kernel, SUFFIX, T,                                                      \
           P(const T* pm, const T* pm2, const T* w, T* rm, T* rv, T* mean, T* invstd, T* scale, \
             long long m, int C, int Pn, double eps, double momentum),                         \
           (pm, pm2, w, rm, rv, mean, invstd, scale, m, C, Pn, eps, momentum))                 \
    EXPORT(bn_apply_kernel, SUFFIX, T,                                                         \
           P(const T* x, const T* mean, const T* scale, const T* bias, const T* r, T* y,       \
             long long total, int C, long long L, int relu),                                   \
           (x, mean, scale, bias, r, y, total, C, L, relu))                                    \
    EXPORT(bn_partial_grad_kernel, SUFFIX, T,                                                  \
           P(const T* g, const T* x, const T* y, const T* mean, const T* invstd, T* pg, T* pgx, \
             long long N, int C, long long L, int Pn, int relu),                               \
           (g, x, y, mean, invstd, pg, pgx, N, C, L, Pn, relu))                                \
    EXPORT_WARPS(bn_grad_finalize_kernel, SUFFIX, T,                                                 \
           P(const T* pg, const T* pgx, const T* w, const T* invstd, T* dgamma, T* dbeta,      \
             T* cg, T* cx, T* cc, long long m, int C, int Pn, int training),                   \
           (pg, pgx, w, invstd, dgamma, dbeta, cg, cx, cc, m, C, Pn, training))                \
    EXPORT(bn_dx_kernel, SUFFIX, T,                                                            \
           P(const T* g, const T* x, const T* y, const T* mean, const T* invstd, const T* cg,  \
             const T* cx, const T* cc, T* dx, T* gr, long long total, int C, long long L, int relu), \
           (g, x, y, mean, invstd, cg, cx, cc, dx, gr, total, C, L, relu))                     \
    EXPORT(sgd_step_kernel, SUFFIX, T,                                                         \
           P(T* p, const T* g, T* buf, long long n, T lr, T mom, T damp, T wd, int nesterov, int first), \
           (p, g, buf, n, lr, mom, damp, wd, nesterov, first))                                 \
    EXPORT(adam_step_kernel, SUFFIX, T,                                                        \
           P(T* p, const T* g, T* m, T* v, long long n, T b1, T omb1, T b2, T omb2, T eps, T wd,  \
             T decay, T step_size, T bias2_sqrt, int decoupled),                               \
           (p, g, m, v, n, b1, omb1, b2, omb2, eps, wd, decay, step_size, bias2_sqrt, decoupled))

EXPORT_ALL(float, f32)
EXPORT_ALL(double, f64)
