#!/usr/bin/env bash
# The GPU check of issue 8, in at most 9 minutes on one H100: every step has a hard timeout, and
# a step that fails or runs out of time does not stop the next. Figures go to $OUT (or a temp
# folder) as gpu_check.jsonl, one JSON line per measurement, plus each step's log.
#
#   bash benchmarks/gpu_check.sh                 # from the repository root
#   PYTHON=.venv/bin/python OUT=/tmp/gpu bash benchmarks/gpu_check.sh
#
# Needs the project installed (pip install -e .) on a CUDA build of torch; nothing is
# downloaded: the full-size mms-lid-256 architecture is built with random weights on the GPU.
set -u
PY=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d -t streamlid-gpu-XXXXXX)}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)  # absolute: the next line changes directory
cd "$(dirname "$0")/.."
started=$(date +%s)

step() {  # step NAME SECONDS ARGS...: one step under its own hard timeout
  local name=$1 limit=$2
  shift 2
  echo "== $name (at most ${limit} s, $(( $(date +%s) - started )) s used)"
  timeout -k 10 "$limit" "$PY" benchmarks/gpu_check.py "$@" --out "$OUT" >"$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 20 "$OUT/$name.log"
  [ $rc -eq 0 ] || echo "== $name ended with status $rc (124: out of time)"
}

{ nvidia-smi; "$PY" -c "import torch; print('torch', torch.__version__, torch.version.cuda)"; } \
  >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
step model 120 model --runs 50                                      # ~1 min
step graphs 60 graphs --runs 100                                    # ~20 s
step streams 170 streams --streams 200 --seconds 90 --batch 128    # 90 s of live audio
step compile 150 compile --runs 100                                 # compile time varies
echo "== done in $(( $(date +%s) - started )) s; figures in $OUT/gpu_check.jsonl"
