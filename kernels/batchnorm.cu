// Batch norm in training mode, fused: three launches forward and three backward, against the ~19
// and ~15 element-wise/reduction calls of the composed path (tinygrad_yolo/ops/norm.py, the
// reference these are tested against). Arrays are contiguous (N, C, L), L = H*W; m = N*L values
// per channel.
//
//   forward   1. bn_partial_stats_kernel   Welford over a strided share of each channel
//             2. bn_finalize_kernel        a warp per channel: combine the shares (Chan et al.), mean,
//                                          1/sqrt(var + eps), scale = γ/σ, the running statistics
//                                          updated in place
//             3. bn_apply_kernel           y = (x - mean[c])·scale[c] + β[c] (+ residual) (then ReLU):
//                                          centred first, as the reference, so a large mean does not
//                                          cancel digits away
//   backward  1. bn_partial_grad_kernel    Σ g' and Σ g'·x̂ over the same shares, g' = g·[y > 0]
//                                          with ReLU (the mask read from the saved output)
//             2. bn_grad_finalize_kernel   a warp per channel: dβ = Σ g', dγ = Σ g'·x̂, the factors of
//             3. bn_dx_kernel              dx = scale·g' - x̂·(scale·dγ/m) - scale·dβ/m (and the
//                                          residual's gradient g', when there is one)
//
// Why no shared memory: each output has exactly one writer and the only exchange between threads
// is a warp's shuffles, so the same source runs on the CPU through the host shim
// (tests/cuda_host_shim.h: thread after thread, a warp's lanes together where they shuffle). The
// reductions are two-level: P partial results per channel, thread p of channel c reading
// elements i = p, p + P, p + 2P, ... of the channel's m values (i = n*L + l), so neighbouring
// threads read neighbouring addresses; then one warp per channel combines its P partials in
// double precision, each lane P/32 of them, then the lanes in a shuffle tree.
//
// Numerics: each share is a Welford running mean and M2 (no catastrophic cancellation in
// Σx² - (Σx)²/m); the shares combine with Chan's pairwise formula. Partials and per-channel
// results are stored in the element type T; the combination runs in double; the running
// statistics are updated in T, rounded step by step as the CPU's update (ops/norm.py).
// The element-wise kernels (apply, dx) run on a 2-D grid, y over the N*C planes and x over a
// plane's L values, so a thread finds its channel once per plane, not by a 64-bit division per
// element; the share loops step (n, l) by (P / L, P % L) with a carry for the same reason.
// Self-contained (no #include): CuPy compiles it with NVRTC, which has no standard headers.

// Elements of a channel share p of P: how many i in [0, m) have i % P == p.
__device__ __forceinline__ long long bn_share_count(long long m, int P, int p)
{
    return p < m % P ? m / P + 1 : m / P;
}

// Rounded products and sums that the compiler may not fuse (a*b + c as one FMA rounds once).
__device__ __forceinline__ float bn_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double bn_mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float bn_add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double bn_add(double a, double b) { return __dadd_rn(a, b); }

template <typename T>
__global__ void bn_partial_stats_kernel(const T* __restrict__ x, T* __restrict__ part_mean,
                                        T* __restrict__ part_m2, long long N, int C, long long L, int P)
{
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= P)
        return;
    const long long m = N * L, step_n = P / L, step_l = P % L;  // i += P as (n, l) += ...
    for (int c = blockIdx.y; c < C; c += gridDim.y) {
        T mean = T(0), m2 = T(0);
        long long count = 0, n = p / L, l = p % L;
        for (long long i = p; i < m; i += P, n += step_n, l += step_l) {
            if (l >= L) {  // the carry: no 64-bit division per element
                l -= L;
                ++n;
            }
            const T v = x[(n * C + c) * L + l];
            ++count;
            const T delta = v - mean;
            mean += delta / T(count);
            m2 += delta * (v - mean);
        }
        part_mean[(long long)c * P + p] = mean;
        part_m2[(long long)c * P + p] = m2;
    }
}

// Chan et al.'s pairwise update: (n_a, mean, m2) absorbs a share of n_b values with mean_b, m2_b.
__device__ __forceinline__ void bn_combine(double& n_a, double& mean, double& m2, double n_b,
                                           double mean_b, double m2_b)
{
    if (n_b == 0.0)
        return;
    const double n = n_a + n_b, delta = mean_b - mean, r = n_b / n;
    mean += delta * r;
    m2 += m2_b + delta * delta * n_a * r;
    n_a = n;
}

#define BN_FULL_WARP 0xffffffffu

// One warp per channel: lane l combines shares l, l + 32, ... in turn, then the 32 lanes'
// results combine in a shuffle tree (no shared memory: the host shim runs a warp's lanes as
// threads meeting at each shuffle); lane 0 writes. mean_out and invstd_out are saved for
// backward; scale feeds bn_apply_kernel. running_* may be null (not tracked); they are updated as
// PyTorch does, with the unbiased variance.
template <typename T>
__global__ void bn_finalize_kernel(const T* __restrict__ part_mean, const T* __restrict__ part_m2,
                                   const T* __restrict__ weight, T* __restrict__ running_mean, T* __restrict__ running_var,
                                   T* __restrict__ mean_out, T* __restrict__ invstd_out,
                                   T* __restrict__ scale,
                                   long long m, int C, int P, double eps, double momentum)
{
    const int lane = threadIdx.x % 32, warps = blockDim.x / 32;
    for (int c = blockIdx.x * warps + threadIdx.x / 32; c < C; c += gridDim.x * warps) {
        double n_a = 0.0, mean = 0.0, m2 = 0.0;
        for (int p = lane; p < P; p += 32)
            bn_combine(n_a, mean, m2, (double)bn_share_count(m, P, p),
                       (double)part_mean[(long long)c * P + p], (double)part_m2[(long long)c * P + p]);
        for (int offset = 16; offset > 0; offset /= 2) {
            const double n_b = __shfl_down_sync(BN_FULL_WARP, n_a, offset);
            const double mean_b = __shfl_down_sync(BN_FULL_WARP, mean, offset);
            const double m2_b = __shfl_down_sync(BN_FULL_WARP, m2, offset);
            bn_combine(n_a, mean, m2, n_b, mean_b, m2_b);
        }
        if (lane != 0)
            continue;
        const double var = m2 / (double)m;  // biased: what normalises this batch
        const double invstd = 1.0 / sqrt(var + eps);
        const double s = (double)weight[c] * invstd;
        mean_out[c] = (T)mean;
        invstd_out[c] = (T)invstd;
        scale[c] = (T)s;
        // in T, rounded step by step as ops/norm.py's in-place update (r *= 1 - momentum;
        // r += momentum * mean) rounds, never contracted into a fused multiply-add
        if (running_mean)
            running_mean[c] = bn_add(bn_mul(running_mean[c], T(1.0 - momentum)),
                                     bn_mul(T(momentum), T(mean)));
        if (running_var)
            running_var[c] = bn_add(bn_mul(running_var[c], T(1.0 - momentum)),
                                    bn_mul(T(momentum * (double)m / (double)(m - 1)), T(var)));
    }
}

// y = (x - mean[c])·scale[c] + bias[c] (+ residual) (then max(·, 0)); residual may be null. Also
// eval mode's whole forward, with the running mean and scale = γ/sqrt(running_var + eps).
template <typename T>
__global__ void bn_apply_kernel(const T* __restrict__ x, const T* __restrict__ mean,
                                const T* __restrict__ scale, const T* __restrict__ bias,
                                const T* __restrict__ residual,
                                T* __restrict__ y, long long total, int C, long long L, int relu)
{
    const long long NC = L > 0 ? total / L : 0;
    for (long long nc = blockIdx.y; nc < NC; nc += gridDim.y) {  // a 2-D grid: y over (n, c)
      const int c = (int)(nc % C);                               // once per plane
      for (long long l = blockIdx.x * (long long)blockDim.x + threadIdx.x; l < L;
           l += (long long)blockDim.x * gridDim.x) {
        const long long i = nc * L + l;
        T v = (x[i] - mean[c]) * scale[c] + bias[c];
        if (residual)
            v += residual[i];
        y[i] = (relu && v < T(0)) ? T(0) : v;  // ReLU: max(v, 0), NaN passes on (as on the CPU)
      }
    }
}

// Σ g' and Σ g'·x̂ per share, x̂ = (x - mean[c])·invstd[c]; g' = g where y > 0 when relu, else g.
template <typename T>
__global__ void bn_partial_grad_kernel(const T* __restrict__ g, const T* __restrict__ x,
                                       const T* __restrict__ y, const T* __restrict__ mean,
                                       const T* __restrict__ invstd, T* __restrict__ part_g,
                                       T* __restrict__ part_gx, long long N, int C, long long L, int P,
                                       int relu)
{
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= P)
        return;
    const long long m = N * L, step_n = P / L, step_l = P % L;
    for (int c = blockIdx.y; c < C; c += gridDim.y) {
        const T mu = mean[c], is = invstd[c];
        T sg = T(0), sgx = T(0);
        long long n = p / L, l = p % L;
        for (long long i = p; i < m; i += P, n += step_n, l += step_l) {
            if (l >= L) {
                l -= L;
                ++n;
            }
            const long long e = (n * C + c) * L + l;
            const T gv = relu ? g[e] * T(y[e] > T(0)) : g[e];  // the CPU's g·[y > 0]: NaN·0 = NaN
            sg += gv;
            sgx += gv * ((x[e] - mu) * is);
        }
        part_g[(long long)c * P + p] = sg;
        part_gx[(long long)c * P + p] = sgx;
    }
}

// Per channel (one warp each, as bn_finalize_kernel): dbeta = Σ g', dgamma = Σ g'·x̂ and the three
// factors of bn_dx_kernel. training = 0 (eval mode): the statistics are constants, dx = scale·g'
// (coef_x = coef_c = 0).
template <typename T>
__global__ void bn_grad_finalize_kernel(const T* __restrict__ part_g, const T* __restrict__ part_gx,
                                        const T* __restrict__ weight, const T* __restrict__ invstd,
                                        T* __restrict__ dgamma, T* __restrict__ dbeta,
                                        T* __restrict__ coef_g, T* __restrict__ coef_x, T* __restrict__ coef_c,
                                        long long m, int C, int P, int training)
{
    const int lane = threadIdx.x % 32, warps = blockDim.x / 32;
    for (int c = blockIdx.x * warps + threadIdx.x / 32; c < C; c += gridDim.x * warps) {
        double sg = 0.0, sgx = 0.0;
        for (int p = lane; p < P; p += 32) {
            sg += (double)part_g[(long long)c * P + p];
            sgx += (double)part_gx[(long long)c * P + p];
        }
        for (int offset = 16; offset > 0; offset /= 2) {
            sg += __shfl_down_sync(BN_FULL_WARP, sg, offset);
            sgx += __shfl_down_sync(BN_FULL_WARP, sgx, offset);
        }
        if (lane != 0)
            continue;
        const double s = (double)weight[c] * (double)invstd[c];
        dbeta[c] = (T)sg;
        dgamma[c] = (T)sgx;
        coef_g[c] = (T)s;
        coef_x[c] = training ? (T)(s * sgx / (double)m) : T(0);
        coef_c[c] = training ? (T)(s * sg / (double)m) : T(0);
    }
}

// dx = g'·coef_g[c] - x̂·coef_x[c] - coef_c[c]; g_residual (may be null) = g'.
template <typename T>
__global__ void bn_dx_kernel(const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ y,
                             const T* __restrict__ mean, const T* __restrict__ invstd,
                             const T* __restrict__ coef_g, const T* __restrict__ coef_x,
                             const T* __restrict__ coef_c, T* __restrict__ dx, T* __restrict__ g_residual,
                             long long total, int C, long long L, int relu)
{
    const long long NC = L > 0 ? total / L : 0;
    for (long long nc = blockIdx.y; nc < NC; nc += gridDim.y) {  // as bn_apply_kernel
      const int c = (int)(nc % C);
      for (long long l = blockIdx.x * (long long)blockDim.x + threadIdx.x; l < L;
           l += (long long)blockDim.x * gridDim.x) {
        const long long i = nc * L + l;
        const T gv = relu ? g[i] * T(y[i] > T(0)) : g[i];
        if (g_residual)
            g_residual[i] = gv;
        // coef_x = 0 (eval mode): dx = scale·g' without reading x, so that a NaN in x stays out of
        // dx as it does on the CPU
        const T cx = coef_x[c];
        if (dx)
            dx[i] = gv * coef_g[c] - (cx == T(0) ? T(0) : (x[i] - mean[c]) * invstd[c] * cx)
                    - coef_c[c];
      }
    }
}
