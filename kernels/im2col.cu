// im2col: x (N, C, H, W) -> col (N, C, kh, kw, Ho, Wo), the Caffe/Chainer layout, both contiguous.
//
//   col[n, c, i, j, oy, ox] = x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]
//                             (0 where that position lies in the zero padding)
//
// Launch: a 2-D grid of grid-stride loops, one thread per col element.
//   blockIdx.y walks the N*C*kh*kw "planes" (one image plane (n, c) and one tap (i, j) each);
//   blockIdx.x / threadIdx.x walk the Ho*Wo output pixels of a plane.
// The plane's (n, c, i, j) is decoded once per plane; per element there is a single 32-bit
// division (integer division is slow on GPUs, 64-bit division much more so). Memory offsets
// are 64-bit: whole tensors may exceed 2^31 elements. The host guarantees H*W and Ho*Wo < 2^31.
// Self-contained (no #include): CuPy compiles it with NVRTC, which has no standard headers.

template <typename T>
__global__ void im2col_kernel(const T* __restrict__ x, T* __restrict__ col,
                              long long NC, int H, int W, int Ho, int Wo, int kh, int kw,
                              int sh, int sw, int ph, int pw, int dh, int dw)
{
    const long long planes = NC * kh * kw;
    const long long plane_size = (long long)Ho * Wo;
    for (long long p = blockIdx.y; p < planes; p += gridDim.y) {
        // p = nc*(kh*kw) + i*kw + j, row-major over (n, c, i, j).
        const long long nc = p / (kh * kw);
        const int tap = (int)(p - nc * (kh * kw));
        const int i = tap / kw, j = tap - (tap / kw) * kw;
        const T* xp = x + nc * H * W;        // the (n, c) input plane
        T* cp = col + p * plane_size;        // this tap's Ho x Wo block of col
        // Input row/column read by output (0, 0) for this tap; each output step moves by the stride.
        const int y0 = i * dh - ph, x0 = j * dw - pw;
        for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < plane_size;
             e += (long long)blockDim.x * gridDim.x) {
            const int oy = (int)e / Wo, ox = (int)e - oy * Wo;
            const int y = y0 + oy * sh, xx = x0 + ox * sw;
            cp[e] = (0 <= y && y < H && 0 <= xx && xx < W) ? xp[(long long)y * W + xx] : T(0);
        }
    }
}
