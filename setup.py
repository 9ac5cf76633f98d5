from setuptools import find_packages, setup

setup(
    name="tinygrad_yolo",
    version="0.2.0",
    description="A from-scratch reverse-mode autograd engine on NumPy/CuPy with a YOLOv1 + ResNet training stack",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["tinygrad_yolo", "tinygrad_yolo.*"]) + ["tinygrad_yolo.kernels"],
    # The CUDA sources live in the top-level kernels/ folder (the design card's layout) but
    # install as tinygrad_yolo.kernels, so no top-level package named "kernels" pollutes site-packages.
    package_dir={"tinygrad_yolo.kernels": "kernels"},
    package_data={"tinygrad_yolo.kernels": ["*.cu", "*.cuh"]},
    install_requires=["numpy>=1.23", "pillow>=9", "tqdm>=4.60", "matplotlib>=3.5", "PyYAML>=5.1"],
    extras_require={
        # The test extra holds the references the exports and metrics are checked against.
        "test": ["pytest>=7", "hypothesis>=6.80", "pycocotools>=2.0.7", "onnx>=1.15",
                 "onnxruntime>=1.17", "safetensors>=0.4"],
        "export": ["onnx>=1.15", "onnxruntime>=1.17"],
        "tensorboard": ["tensorboardX>=2.6"],
        # CuPy 14's [ctk] extra brings cuBLAS, NVRTC and the runtime from PyPI (cuda-toolkit[...]),
        # so a machine with only the NVIDIA driver can train; CuPy 13 has no such extra.
        "cuda12": ["cupy-cuda12x[ctk]>=14"],
        "cuda13": ["cupy-cuda13x[ctk]>=14"],
        # data-parallel training (train --nproc N): mpi4py and an MPI runtime with its mpiexec
        "dist": ["mpi4py>=4", "mpich>=4"],
    },
    entry_points={"console_scripts": ["tinygrad-yolo=tinygrad_yolo.cli:main"]},
)
