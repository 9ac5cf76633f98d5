// Compile CUDA kernel sources as plain host C++ (g++), so their index logic can be tested on a
// machine without a GPU. Kernels become ordinary (template) functions; the CUDA built-in index
// variables become globals that host_launch() sets before calling the kernel body once for
// every (block, thread) of the grid, one after another.
//
// What this checks: the index arithmetic, bounds, grid-stride loops and coverage of every
// output element. What it cannot check: races between threads (they run sequentially here),
// which is why the kernels are written so that each output address has exactly one writer.
#pragma once
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct HostDim3 {
    unsigned int x = 0, y = 0, z = 0;
};
// What CUDA provides per thread; thread_local for host_launch_warps, which runs lanes as threads.
inline thread_local HostDim3 blockIdx, threadIdx, blockDim, gridDim;

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

// ---- warps: kernels that exchange values between lanes (__shfl_down_sync) ----------------------
// host_launch_warps runs the 32 lanes of each warp as host threads, one warp after another, and
// __shfl_down_sync meets them at a barrier, so a shuffle reads what the other lane holds at that
// point of the program, as on the GPU. Every lane of a warp must reach every shuffle (the
// kernels give a whole warp one channel, so their loops are uniform across it).
struct HostWarp {
    std::mutex mutex;
    std::condition_variable all_here;
    unsigned arrived = 0, generation = 0;
    unsigned char slots[32][8];

    void barrier()
    {
        std::unique_lock<std::mutex> lock(mutex);
        const unsigned gen = generation;
        if (++arrived == 32) {
            arrived = 0;
            ++generation;
            all_here.notify_all();
        } else {
            all_here.wait(lock, [&] { return gen != generation; });
        }
    }
};
inline thread_local HostWarp* host_warp = nullptr;

template <typename T>
T __shfl_down_sync(unsigned /*mask*/, T value, unsigned delta)
{
    static_assert(sizeof(T) <= 8, "a shuffle moves at most 8 bytes here");
    const unsigned lane = threadIdx.x % 32;
    std::memcpy(host_warp->slots[lane], &value, sizeof value);
    host_warp->barrier();  // every lane's value is posted
    T out = value;         // beyond the warp's last lane: the caller's own value, as CUDA does
    if (lane + delta < 32)
        std::memcpy(&out, host_warp->slots[lane + delta], sizeof out);
    host_warp->barrier();  // every lane has read before the slots are reused
    return out;
}

// As host_launch, with each warp's lanes running together (block_x a multiple of 32).
template <typename Body>
void host_launch_warps(unsigned grid_x, unsigned grid_y, unsigned block_x, Body body)
{
    for (unsigned by = 0; by < grid_y; ++by)
        for (unsigned bx = 0; bx < grid_x; ++bx)
            for (unsigned w = 0; w < block_x / 32; ++w) {
                HostWarp warp;
                std::vector<std::thread> lanes;
                for (unsigned lane = 0; lane < 32; ++lane)
                    lanes.emplace_back([&, lane] {
                        gridDim = {grid_x, grid_y, 1};
                        blockDim = {block_x, 1, 1};
                        blockIdx = {bx, by, 0};
                        threadIdx = {w * 32 + lane, 0, 0};
                        host_warp = &warp;
                        body();
                    });
                for (auto& t : lanes)
                    t.join();
            }
}
