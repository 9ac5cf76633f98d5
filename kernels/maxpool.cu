// 2-D max pooling on contiguous NCHW arrays: forward (output + argmax) and backward (a gather).
//
// Forward:  y[n, c, oy, ox] = max over r < kh, s < kw of x[n, c, oy*sh - ph + r, ox*sw - pw + s]
//   Padding counts as -inf: it never wins. argmax is the winner's flat index h*W + w inside its
//   (n, c) input plane (PyTorch's return_indices convention). Ties go to the FIRST maximum in
//   row-major (r, s) window order; a NaN wins over any number and the first NaN stays (as with
//   np.max / np.argmax). A window lying wholly in the padding gives y = -inf and argmax = -1.
// Backward: gx[n, c, h, w] = sum of gy[n, c, oy, ox] over the windows whose argmax is h*W + w.
//   One thread per input pixel visits only the windows that cover it: no atomics, deterministic.
//
// Launch (both): blockIdx.y walks the N*C planes, blockIdx.x / threadIdx.x the pixels of a plane
// (outputs for forward, inputs for backward), grid-stride loops. Offsets are 64-bit; the host
// guarantees H*W, Ho*Wo < 2^31. Self-contained (no #include) for NVRTC.

template <typename T> __device__ __forceinline__ T negative_infinity();
template <> __device__ __forceinline__ float negative_infinity<float>()
{
    return __int_as_float((int)0xff800000u);                       // IEEE-754 -inf bit pattern
}
template <> __device__ __forceinline__ double negative_infinity<double>()
{
    return __longlong_as_double((long long)0xfff0000000000000ull);
}

template <typename T>
__global__ void max_pool2d_forward_kernel(const T* __restrict__ x, T* __restrict__ y,
                                          int* __restrict__ argmax,
                                          long long NC, int H, int W, int Ho, int Wo, int kh, int kw,
                                          int sh, int sw, int ph, int pw)
{
    const long long in_size = (long long)H * W, out_size = (long long)Ho * Wo;
    for (long long nc = blockIdx.y; nc < NC; nc += gridDim.y) {
        const T* xp = x + nc * in_size;
        for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < out_size;
             e += (long long)blockDim.x * gridDim.x) {
            const int oy = (int)e / Wo, ox = (int)e - oy * Wo;
            const int y0 = oy * sh - ph, x0 = ox * sw - pw;    // window's top-left, maybe in padding
            T best = negative_infinity<T>();
            int best_idx = -1;
            for (int r = 0; r < kh; ++r) {
                const int h = y0 + r;
                if (h < 0 || h >= H) continue;                 // padding row: -inf, never wins
                for (int s = 0; s < kw; ++s) {
                    const int w = x0 + s;
                    if (w < 0 || w >= W) continue;
                    const T v = xp[(long long)h * W + w];
                    // Strict > keeps the first of equal maxima. v != v is NaN: it beats a number,
                    // and once best is NaN nothing replaces it. The first real pixel always sets best.
                    if (best_idx < 0 || v > best || (v != v && best == best)) {
                        best = v;
                        best_idx = h * W + w;
                    }
                }
            }
            y[nc * out_size + e] = best;
            argmax[nc * out_size + e] = best_idx;
        }
    }
}

template <typename T>
__global__ void max_pool2d_backward_kernel(const T* __restrict__ gy, const int* __restrict__ argmax,
                                           T* __restrict__ gx,
                                           long long NC, int H, int W, int Ho, int Wo, int kh, int kw,
                                           int sh, int sw, int ph, int pw)
{
    const long long in_size = (long long)H * W, out_size = (long long)Ho * Wo;
    for (long long nc = blockIdx.y; nc < NC; nc += gridDim.y) {
        const T* gyp = gy + nc * out_size;
        const int* ap = argmax + nc * out_size;
        for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < in_size;
             e += (long long)blockDim.x * gridDim.x) {
            const int h = (int)e / W, w = (int)e - h * W;
            // Window oy covers rows oy*sh - ph .. oy*sh - ph + kh - 1, so it covers h iff
            //   ceil((h + ph - kh + 1) / sh) <= oy <= floor((h + ph) / sh),   clipped to [0, Ho).
            // (For a = h + ph - kh + 1 > 0, ceil(a / sh) = (a - 1) / sh + 1; all operands >= 0.)
            const int oy_lo = (h + ph < kh) ? 0 : (h + ph - kh) / sh + 1;
            const int oy_hi = ((h + ph) / sh < Ho - 1) ? (h + ph) / sh : Ho - 1;
            const int ox_lo = (w + pw < kw) ? 0 : (w + pw - kw) / sw + 1;
            const int ox_hi = ((w + pw) / sw < Wo - 1) ? (w + pw) / sw : Wo - 1;
            T acc = T(0);
            for (int oy = oy_lo; oy <= oy_hi; ++oy)
                for (int ox = ox_lo; ox <= ox_hi; ++ox)
                    if (ap[oy * Wo + ox] == (int)e) acc += gyp[oy * Wo + ox];
            gx[nc * in_size + e] = acc;
        }
    }
}
