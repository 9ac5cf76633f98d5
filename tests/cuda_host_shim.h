// Compile CUDA kernel sources as plain host C++ (g++), so their index logic can be tested on a
// machine without a GPU. Kernels become ordinary (template) functions; the CUDA built-in index
// variables become globals that host_launch() sets before calling the kernel body once for
// every (block, thread) of the grid, one after another.
//
// What this checks: the index arithmetic, bounds, grid-stride loops and coverage of every
// output element. What it cannot check: races between threads (they run sequentially here),
// which is why the kernels are written so that each output address has exactly one writer.
#pragma once
#include <cstring>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct HostDim3 {
    unsigned int x = 0, y = 0, z = 0;
};
inline HostDim3 blockIdx, threadIdx, blockDim, gridDim;  // what CUDA provides per thread

// Device intrinsics the kernels use: reinterpret bits, as on the GPU.
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, sizeof f); return f; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, sizeof d); return d; }
// Correctly rounded arithmetic that CUDA never contracts into an FMA; plain host arithmetic is that
// already (the host build has no -march, so no FMA).
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }

// Run `body` (a call of the kernel) as every thread of a grid (grid_x, grid_y) of 1-D blocks.
template <typename Body>
void host_launch(unsigned grid_x, unsigned grid_y, unsigned block_x, Body body)
{
    gridDim = {grid_x, grid_y, 1};
    blockDim = {block_x, 1, 1};
    for (unsigned by = 0; by < grid_y; ++by)
        for (unsigned bx = 0; bx < grid_x; ++bx)
            for (unsigned tx = 0; tx < block_x; ++tx) {
                blockIdx = {bx, by, 0};
                threadIdx = {tx, 0, 0};
                body();
            }
}
