#!/usr/bin/env bash
# One device session's GPU check (see benchmarks/gpu_check.py): environment facts, then the
# sections named in $SECTIONS, logs under ${OUT:-gpu_logs}. Run from the repository root.
# Needs (nothing is downloaded): CuPy >= 14 with its CUDA libraries and the test tools,
# `pip install -e ".[cuda12,test]"`; pytest-xdist and pytest-timeout for the default
# PYTEST_ARGS (-n 12 --timeout 180; set PYTEST_ARGS= without them); PyTorch with CUDA for the
# conv and step sections. benchmarks/gpu_check_all.sh is the first-contact run that needs none
# of the pytest plugins.
set -u
OUT=${OUT:-gpu_logs}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
# CuPy's compiled kernels in an ignored folder of the checkout: a second run doesn't recompile
export CUPY_CACHE_DIR=${CUPY_CACHE_DIR:-$PWD/.cupy_cache}; mkdir -p "$CUPY_CACHE_DIR"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc
  python3 -c "import sys, numpy, cupy; print(sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__)"
  python3 -c "import torch; print('torch', torch.__version__)" || true; } > "$OUT/env.txt" 2>&1
python3 benchmarks/gpu_check.py --logs "$OUT" --sections "${SECTIONS:-launch,fused,tests,kernels,conv,step,train}" \
  --tests "${TESTS:-tests}" --pytest-args "${PYTEST_ARGS:--n 12 --timeout 180}" \
  --tests-timeout "${TESTS_TIMEOUT:-200}" --train-seconds "${TRAIN_SECONDS:-240}" \
  --train-args "${TRAIN_ARGS:---workers 6}" "$@"
