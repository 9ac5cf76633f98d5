"""Stand-ins for the GPU, for tests and benchmarks on a machine without one. The package itself
never imports them (tests/test_stand_ins.py checks); they need neither a GPU nor the test extras.

    fake_cupy           a counting stand-in for the CuPy module, NumPy underneath, installed with
                        backend.use_cupy (fake_ndarray, fake_kernels, kernel_emulations,
                        fake_cuda and fake_cublas are its parts; counting.py what it counts)
    launch_count        one training step of the YOLO-ResNet18 against it: device calls, host
                        syncs, bytes (python -m tinygrad_yolo.testing.launch_count)
"""
