#!/usr/bin/env bash
# On the device: train.py alone (no worker, no sandbox) at DEVICE_BATCH 128 and at 64 (TOTAL_BATCH_TOKENS
# kept, so 2 and 4 passes of gradient accumulation), a BUDGET-second run each on the embedded corpus:
# tokens/s, the trainer's peak_vram, and the card's memory in use every 0.5 s (nvidia-smi). Which batch
# lets a training run and the next run's warm-up share an 80 GB card (docs/PERFORMANCE.md).
#   npm run bundle   # here; then on the device, dist/ carried:
#   BUDGET=30 bash bench/duty-cycle/device-batch.sh
set -eu
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
export AUTORESEARCH_CACHE=/tmp/batch-cache AUTORESEARCH_PROFILE=gpu PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/machine.txt"
python3 dist/trainer/prepare.py --source embedded --embedded-path dist/corpus --vocab-size 8192 > "$OUT/prepare.log" 2>&1
for b in ${BATCHES:-128 64}; do
  mkdir -p /tmp/batch$b && cp dist/trainer/*.py /tmp/batch$b/
  sed -i "s/^DEVICE_BATCH = [0-9]*/DEVICE_BATCH = $b/" /tmp/batch$b/train.py
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$OUT/memory-$b.csv" &
  smi=$!
  (cd /tmp/batch$b && AUTORESEARCH_TIME_BUDGET=${BUDGET:-30} python3 train.py > "$OUT/train-$b.log" 2>&1) || echo "train.py failed at $b"
  kill $smi
  echo "== DEVICE_BATCH $b: card's memory in use at most $(sort -n "$OUT/memory-$b.csv" | tail -1) MiB"
  grep " step " "$OUT/train-$b.log" | tail -2
  grep -v " step " "$OUT/train-$b.log" | tail -12
done
