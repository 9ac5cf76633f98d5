// col2im: col (N, C, kh, kw, Ho, Wo) -> x (N, C, H, W), the adjoint of im2col, as a GATHER.
//
//   x[n, c, h, w] = sum of col[n, c, i, j, oy, ox] over all (i, j, oy, ox) with
//                   oy*sh - ph + i*dh == h  and  ox*sw - pw + j*dw == w
//
// One thread per input pixel sums exactly the entries that were read from it, so no two threads
// write the same address: no atomics, and a fixed summation order (taps i, j ascending), so the
// result is deterministic. (A scatter, one thread per col entry, would need atomicAdd.)
//
// Launch: blockIdx.y walks the N*C image planes, blockIdx.x / threadIdx.x the H*W pixels of a
// plane, both grid-stride loops. Offsets are 64-bit; the host guarantees H*W, Ho*Wo < 2^31.

template <typename T>
__global__ void col2im_kernel(const T* __restrict__ col, T* __restrict__ x,
                              long long NC, int H, int W, int Ho, int Wo, int kh, int kw,
                              int sh, int sw, int ph, int pw, int dh, int dw)
{
    const long long plane_size = (long long)H * W;
    const long long tap_size = (long long)Ho * Wo;
    for (long long nc = blockIdx.y; nc < NC; nc += gridDim.y) {
        const T* cp = col + nc * kh * kw * tap_size;   // col[n, c]: kh*kw blocks of Ho x Wo
        T* xp = x + nc * plane_size;
        for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < plane_size;
             e += (long long)blockDim.x * gridDim.x) {
            const int h = (int)e / W, w = (int)e - h * W;
            T acc = T(0);
            for (int i = 0; i < kh; ++i) {
                // Output row oy reads h through tap i iff oy*sh == ty, ty = h + ph - i*dh.
                // Test the range BEFORE divisibility: for ty < 0, C's % and / truncate toward
                // zero and would map e.g. ty = -1 onto a real row (a bug Chainer once shipped).
                const int ty = h + ph - i * dh;
                if (ty < 0) break;                       // ty only shrinks as i grows
                if (ty >= Ho * sh || ty % sh != 0) continue;
                const int oy = ty / sh;
                for (int j = 0; j < kw; ++j) {
                    const int tx = w + pw - j * dw;
                    if (tx < 0) break;
                    if (tx >= Wo * sw || tx % sw != 0) continue;
                    const int ox = tx / sw;
                    acc += cp[(i * kw + j) * tap_size + (long long)oy * Wo + ox];
                }
            }
            xp[e] = acc;
        }
    }
}
