"""What the stand-ins count: the device work, host synchronisations and allocations that a CUDA
code path would ask of a GPU (fake_cupy, fake_cublas and fake_kernels all report here).

    calls     device work by category: elementwise (ufuncs, fills, custom ElementwiseKernels,
              index gathers and scatters), reduction, gemm, raw (RawModule kernels), copy
              (ascontiguousarray / astype / concatenate / hidden copies), transfer (host->device:
              cp.asarray of host data, a Python scalar included (``x * 2.0`` on CUDA) -- a copy
              queued on the stream like a launch, so it counts as a device call)
    syncs     host synchronisations: .item(), .get(), asnumpy, float()/int()/bool()/format()
              of a device array, boolean-mask indexing (CuPy must learn the result's size),
              Device().synchronize(), Event.synchronize()
    allocs    the bytes of every fresh device array (live and peak bytes too)
"""
import collections
import weakref


class Counter:
    def __init__(self):
        self.reset()

    def reset(self):
        self.calls = collections.Counter()      # category -> calls
        self.names = collections.Counter()      # (category, name) -> calls
        self.syncs = collections.Counter()      # kind -> host synchronisations
        self.allocs = []                        # bytes of each fresh array, in order
        self.live = getattr(self, "live", 0)
        self.buffers = getattr(self, "buffers", {})  # address -> bytes of every live allocation
        self.peak = self.live
        self.copy_bytes = 0

    def call(self, category, name, n=1):
        self.calls[category] += n
        self.names[(category, name)] += n

    def sync(self, kind):
        self.syncs[kind] += 1

    def alloc(self, a):
        nbytes = int(a.nbytes)
        self.allocs.append(nbytes)
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        address = a.ctypes.data
        self.buffers[address] = nbytes
        weakref.finalize(a, self._free, address, nbytes)

    def hidden_copy(self, nbytes):
        """A temporary copy CuPy makes inside a call: counted, alive during the call only."""
        self.call("copy", "matmul_hidden_copy")
        self.copy_bytes += nbytes
        self.allocs.append(int(nbytes))
        self.peak = max(self.peak, self.live + nbytes)

    def _free(self, address, nbytes):
        self.live -= nbytes
        self.buffers.pop(address, None)

    def check_extent(self, what, ptr, nbytes):
        """Raise unless [ptr, ptr + nbytes) lies inside one live device allocation (a raw-pointer
        call reading past its array would read garbage on a GPU, and crash here)."""
        for address, size in self.buffers.items():
            if address <= ptr and ptr + nbytes <= address + size:
                return
        raise ValueError(f"{what}: {nbytes} bytes from address {ptr:#x} are not inside one "
                         "device allocation")

    def total_calls(self):
        return sum(self.calls.values())

    def summary(self):
        return {"calls": self.total_calls(), "by_category": dict(sorted(self.calls.items())),
                "syncs": sum(self.syncs.values()),
                "syncs_by_kind": dict(sorted(self.syncs.items())),
                "allocations": len(self.allocs), "allocated_bytes": sum(self.allocs),
                "distinct_sizes": len(set(self.allocs)), "peak_live_bytes": self.peak,
                "hidden_copy_bytes": self.copy_bytes}


counter = Counter()
