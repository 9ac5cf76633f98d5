"""Stand-ins for the GPU, for tests and benchmarks on a machine without one (never imported by the
package itself; they need neither a GPU nor the test extras).

    fake_cupy       a counting stand-in for the CuPy module, NumPy underneath
    launch_count    one training step of the YOLO-ResNet18 against it: device calls, host syncs, bytes
"""
