#!/usr/bin/env bash
# The GPU check in one command: install what is missing, run the CUDA tests, print the table.
#
#   benchmarks/gpu_check.sh [--out DIR] [--budget SECONDS] [--cpu-smoke] [-- BENCH_ARGS...]
#   benchmarks/gpu_check.sh --prepare [--python-version 3.12]     (on a machine with an index)
#
# 1. Missing Python packages (PyAV, pycocotools, ...) are installed into $GPU_CHECK_SITE
#    (default /tmp/vpanoptic-gpu-site; not into the environment), from the wheel files in ./wheelhouse when it holds them (no network
#    needed), else from the package index. `--prepare` fills ./wheelhouse with `pip download`
#    for the GPU machine's Python (default 3.12, the CUDA image's), pinned to the versions
#    installed here when there are any.
# 2. `pytest -m cuda` (tests/cuda): every model family on CUDA against the CPU, autocast,
#    host copies, the pipeline end to end. Log: DIR/cuda_tests.log.
# 3. benchmarks/gpu_bench.py with the time left (the whole script stays under --budget,
#    default 470 s): DIR/table.md and DIR/results.json.
#
# Exit codes: 0 the table is written (tests passed); 1 the CUDA tests failed (the table is
# still written); 2 bad arguments or a package could not be installed; 3 no CUDA device
# (nothing measured; with --cpu-smoke the CPU run of the same code comes first); 4 the
# benchmark failed or ran past its time.
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
PY=${PYTHON:-python3}
OUT=out/gpu_check
BUDGET=470
PREPARE=0
SMOKE=0
PYVER=3.12
BENCH_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --prepare) PREPARE=1; shift ;;
    --python-version) PYVER=$2; shift 2 ;;
    --cpu-smoke) SMOKE=1; shift ;;
    --) shift; BENCH_ARGS=("$@"); break ;;
    *) echo "gpu_check: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

# import name:package name of everything the tests and the benchmark import
NEEDED="av:av pycocotools:pycocotools cv2:opencv-python-headless scipy:scipy yaml:pyyaml tqdm:tqdm
threadpoolctl:threadpoolctl transformers:transformers timm:timm pytest:pytest pytest_timeout:pytest-timeout"
WHEELS=(av pycocotools)  # what the CUDA image lacks; the rest is there

if [ "$PREPARE" = 1 ]; then
  mkdir -p wheelhouse
  specs=()
  for pkg in "${WHEELS[@]}"; do
    ver=$($PY -c "import importlib.metadata as m; print(m.version('$pkg'))" 2>/dev/null) && specs+=("$pkg==$ver") || specs+=("$pkg")
  done
  echo "gpu_check: downloading ${specs[*]} for CPython $PYVER (manylinux x86_64) into wheelhouse/"
  $PY -m pip download --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d wheelhouse "${specs[@]}" || exit 2
  ls -l wheelhouse
  exit 0
fi

mkdir -p "$OUT"
SITE=${GPU_CHECK_SITE:-/tmp/vpanoptic-gpu-site}
missing=()
for pair in $NEEDED; do
  mod=${pair%%:*}; pkg=${pair#*:}
  $PY -c "import $mod" 2>/dev/null || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "gpu_check: installing ${missing[*]} into $SITE"
  if [ -d wheelhouse ] && $PY -m pip install -q --no-index --find-links wheelhouse --no-deps --target "$SITE" "${missing[@]}"; then
    :
  elif $PY -m pip install -q --retries 0 --timeout 10 --no-deps --target "$SITE" "${missing[@]}"; then
    :
  else
    echo "gpu_check: could not install ${missing[*]}: run '$0 --prepare' on a machine with a package index and bring wheelhouse/ along" >&2
    exit 2
  fi
fi
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  if [ "$SMOKE" = 1 ]; then
    echo "gpu_check: CPU smoke run (the CUDA tests skip themselves; test-size networks)"
    $PY -m pytest -q -m cuda tests/cuda -p no:cacheprovider 2>&1 | tee "$OUT/cuda_tests.log"
    $PY benchmarks/gpu_bench.py --device cpu --quick --budget 120 --out "$OUT" "${BENCH_ARGS[@]}"
  fi
  echo "no CUDA device: torch.cuda.is_available() is false on $(hostname); nothing measured (exit 3)"
  exit 3
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu_check: /'
left=$(( BUDGET - ($(date +%s) - START) ))
tests_limit=$(( left / 3 ))
echo "gpu_check: pytest -m cuda (at most ${tests_limit} s)"
timeout "$tests_limit" $PY -m pytest -q -m cuda tests/cuda -p no:cacheprovider 2>&1 | tee "$OUT/cuda_tests.log"
tests_rc=${PIPESTATUS[0]}
left=$(( BUDGET - ($(date +%s) - START) - 15 ))
echo "gpu_check: benchmark, ${left} s budget"
timeout $(( left + 10 )) $PY benchmarks/gpu_bench.py --device cuda --budget "$left" --out "$OUT" "${BENCH_ARGS[@]}"
bench_rc=$?
echo "gpu_check: CUDA tests exit code $tests_rc, benchmark exit code $bench_rc, $(( $(date +%s) - START )) s; table: $OUT/table.md"
[ "$bench_rc" = 0 ] || exit 4
[ "$tests_rc" = 0 ] || exit 1
exit 0
