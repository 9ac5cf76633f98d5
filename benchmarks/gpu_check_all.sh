#!/usr/bin/env bash
# The whole first-contact GPU check of issue 26, one run of at most 10 minutes on a lent GPU,
# unchanged; run from the repository root:
#
#     bash benchmarks/gpu_check_all.sh              # logs under ${OUT:-gpu_logs}
#
# Needs (nothing is downloaded): the package's CUDA extra, `pip install -e ".[cuda12,test]"`
# (CuPy >= 14 with its CUDA libraries, [ctk]; pytest, hypothesis) and PyTorch with CUDA for part 5
# (PyTorch is never a dependency of the package). `00_needs.log` says what is missing.
# Each part has its own time limit and log; a failing part does not stop the next one.
#   01 versions, cuBLAS/NVRTC load, every kernel compiled, GEMM layouts against NumPy, one
#      YOLO-ResNet18 float64 step on the GPU against the CPU   (benchmarks/gpu_first_contact.py)
#   02 the GPU test files, each with its own limit
#   03 `train --device cuda`: 40 steps on the synthetic set, validation, best/last, report
#   04 benchmarks/gpu_check.py's step and fused sections against PyTorch, TF32 off on both
# summary.txt: one line per part (exit status, seconds); a limit reached is exit status 124.
# The limits add up to 575 s, so the whole run fits a 600-second command.
set -u
OUT=${OUT:-gpu_logs}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
# CuPy's compiled kernels in an ignored folder of the checkout: a second run doesn't recompile
export CUPY_CACHE_DIR=${CUPY_CACHE_DIR:-$PWD/.cupy_cache}; mkdir -p "$CUPY_CACHE_DIR"
PY=${PYTHON:-python3}
: > "$OUT/summary.txt"

part() {  # part NAME SECONDS COMMAND...: the command's output to $OUT/NAME.log, a line of summary
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    echo "$name exit $rc, $(( $(date +%s) - start )) s (limit $limit s)" | tee -a "$OUT/summary.txt"
}

part 00_needs 20 bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv;
  nproc; for m in cupy pytest hypothesis torch; do
  $PY -c \"import \$m; print('\$m', \$m.__version__)\" 2>/dev/null || echo \"MISSING \$m\"; done"
part 01_first_contact 90 $PY benchmarks/gpu_first_contact.py
part 02_test_gemm_gpu 20 $PY -m pytest -q -p no:cacheprovider tests/test_gemm_gpu.py
part 02_test_gpu_fused 45 $PY -m pytest -q -p no:cacheprovider tests/test_gpu_fused.py
part 02_test_gpu 90 $PY -m pytest -q -p no:cacheprovider tests/test_gpu.py
part 02_test_kernels 30 $PY -m pytest -q -p no:cacheprovider tests/test_kernels.py -k "gpu or cupy"
# a small synthetic set outside $OUT (whose files come back): 320 + 64 images, seconds to make
DATA=${DATA:-/tmp/tg_gpu_synthetic}
part 03_data 30 $PY -c "from tinygrad_yolo.data import generate_synthetic_voc as g
g('$DATA', n_train=320, n_val=64, img_size=224, seed=0)"
part 03_train 110 $PY -m tinygrad_yolo.cli train --device cuda --data "$DATA" --steps 40 \
  --batch-size 16 --img-size 224 --eval-every 1 --eval-max-images 64 --no-progress --exist-ok \
  --out "$OUT/train"
ls -l "$OUT/train" >> "$OUT/03_train.log" 2>&1
part 04_gpu_check 140 $PY benchmarks/gpu_check.py --logs "$OUT/gpu_check" --sections step,fused
cat "$OUT/summary.txt"
