// im2col: x (N, C, H, W) -> col, both contiguous, in one of two layouts:
//   images   (N, C, kh, kw, Ho, Wo)  the Caffe/Chainer layout: one (C*kh*kw, Ho*Wo) matrix per image
//   columns  (C, kh, kw, N, Ho, Wo)  the images side by side along the columns: one
//                                    (C*kh*kw, N*Ho*Wo) matrix, so that dW = gy·colᵀ is ONE GEMM
//                                    with k = N*Ho*Wo instead of N products and their sum
//
//   col[n, c, i, j, oy, ox] = x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]
//                             (0 where that position lies in the zero padding)
//
// The layout is two strides: image_stride between images' planes (C*kh*kw*Ho*Wo | Ho*Wo) and
// tap_stride between the Ho x Wo blocks of one plane's kernel taps (Ho*Wo | N*Ho*Wo).
//
// Launch: a 2-D grid of grid-stride loops, one thread per OUTPUT PIXEL (oy, ox) of an image
// plane, writing that pixel's kh*kw column entries (one per kernel tap).
//   blockIdx.y walks the N*C image planes (n, c);
//   blockIdx.x / threadIdx.x walk the Ho*Wo output pixels of a plane.
// Why per pixel and not per col element: a thread per element spent more on decoding its index
// (a 64-bit division to find the plane and tap) than on moving its 4 bytes. Per pixel, the
// decode (one 32-bit division) is shared by kh*kw stores, and each tap's stores are still
// coalesced: neighbouring threads write neighbouring addresses of that tap's Ho x Wo block.
// Memory offsets are 64-bit (whole tensors may exceed 2^31 elements); within a plane they are
// 32-bit: the host guarantees H*W and Ho*Wo < 2^31.
// Self-contained (no #include): CuPy compiles it with NVRTC, which has no standard headers.

template <typename T>
__global__ void im2col_kernel(const T* __restrict__ x, T* __restrict__ col,
                              long long NC, int H, int W, int Ho, int Wo, int kh, int kw,
                              int sh, int sw, int ph, int pw, int dh, int dw,
                              int C, long long image_stride, long long tap_stride)
{
    const int plane_size = Ho * Wo;
    for (long long nc = blockIdx.y; nc < NC; nc += gridDim.y) {
        const long long n = nc / C, c = nc - n * C;           // once per plane, not per element
        const T* xp = x + nc * H * W;                         // the (n, c) input plane
        T* cp = col + n * image_stride + c * kh * kw * tap_stride;  // col[n, c, 0, 0]
        for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < plane_size;
             e += (long long)blockDim.x * gridDim.x) {
            const int oy = (int)e / Wo, ox = (int)e - oy * Wo;
            // Input pixel read by tap (0, 0); tap (i, j) moves it by (i*dh, j*dw).
            const int y0 = oy * sh - ph, x0 = ox * sw - pw;
            T* out = cp + e;                                   // col[n, c, 0, 0, oy, ox]
            for (int i = 0; i < kh; ++i) {
                const int y = y0 + i * dh;
                const bool row_inside = 0 <= y && y < H;
                for (int j = 0; j < kw; ++j, out += tap_stride) {
                    const int xx = x0 + j * dw;
                    *out = (row_inside && 0 <= xx && xx < W) ? xp[y * W + xx] : T(0);
                }
            }
        }
    }
}
