#!/usr/bin/env bash
# GPU benchmark of train.py (docs/TRAINER.md has the results). Run from the repository root:
#   trainer/bench/gpu.sh startup   prepare, a cold 20 s run (empty caches), two warm 10 s runs, a warm 300 s run
#   trainer/bench/gpu.sh seeds     prepare, then the default config for seeds $SEEDS (1 2 3) at SEEDS_BUDGET s (300)
#   trainer/bench/gpu.sh flex      flex_attention kernel options at the trainer's shapes (trainer/bench/flex.py)
#   trainer/bench/gpu.sh attention flex against SDPA's kernels (attention.py), cuDNN's first calls (cudnn_first.py)
#   trainer/bench/gpu.sh profile   step time and kernel table of train.py, or of TRAIN=path/to/variant/train.py
# The corpus is the embedded one, copied to .bench-corpus/ (the device machine has no node_modules).
# Logs go to $OUT (or ./bench-out).
set -euo pipefail
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export AUTORESEARCH_CACHE=${AUTORESEARCH_CACHE:-/tmp/autoresearch-bench}
export AUTORESEARCH_PROFILE=${AUTORESEARCH_PROFILE:-gpu}
# As the worker runs a gpu trainer: torch's bytecode cached with the compile caches (docs/TRAINER.md, "Start-up").
export PYTHONPYCACHEPREFIX=$AUTORESEARCH_CACHE/compile/pycache
unset PYTHONDONTWRITEBYTECODE
CORPUS=${CORPUS:-$PWD/.bench-corpus}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "${PYTHON:-python3}" -c 'import torch, sys; print("torch", torch.__version__, "cuda", torch.version.cuda, "python", sys.version.split()[0])'
} | tee "$OUT/machine.txt"

"${PYTHON:-python3}" trainer/prepare.py --source embedded --embedded-path "$CORPUS" --vocab-size 8192 2>&1 | tee "$OUT/prepare.log"

run() {  # run NAME BUDGET SEED
  echo "=== $1: budget $2 s, seed $3"
  AUTORESEARCH_TIME_BUDGET=$2 AUTORESEARCH_SEED=$3 "${PYTHON:-python3}" trainer/train.py 2>&1 | tee "$OUT/$1.log"
}

case "${1:-startup}" in
  startup)
    rm -rf "$AUTORESEARCH_CACHE/compile"
    run cold20 20 42
    run warm10a 10 42
    run warm10b 10 42
    run warm300 300 42
    ;;
  seeds)
    for seed in ${SEEDS:-1 2 3}; do run "seed$seed" "${SEEDS_BUDGET:-300}" "$seed"; done
    ;;
  flex)
    "${PYTHON:-python3}" trainer/bench/flex.py 2>&1 | tee "$OUT/flex.log"
    exit 0
    ;;
  attention)
    "${PYTHON:-python3}" trainer/bench/cudnn_first.py 2>&1 | tee "$OUT/cudnn_first.log"
    "${PYTHON:-python3}" trainer/bench/attention.py 2>&1 | tee "$OUT/attention.log"
    exit 0
    ;;
  profile)
    [ "${TRAIN:-trainer/train.py}" = trainer/train.py ] || cp trainer/prepare.py "$(dirname "$TRAIN")/"
    AUTORESEARCH_TIME_BUDGET=60 "${PYTHON:-python3}" trainer/bench/profile.py 2>&1 | grep -v '^step [0-9]' | tee "$OUT/profile.log"
    exit 0
    ;;
esac

echo "=== summary"
for f in "$OUT"/*.log; do
  [ "$(basename "$f")" = prepare.log ] && continue
  printf '%-10s' "$(basename "$f" .log)"
  grep -E '^(val_bpb|training_seconds|total_seconds|peak_vram_mb|mfu_percent|num_steps):' "$f" | awk '{printf " %s %s", $1, $2}'
  grep -E '^step ' "$f" | tail -1 | grep -oE 'tok/s [0-9,]+' | tr -d ',' | awk '{printf " %s", $0}'
  echo
done
