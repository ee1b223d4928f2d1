#!/usr/bin/env bash
# A real run of the whole system from the release bundles on one GPU machine: the coordinator from
# dist/coordinator.mjs, a campaign on the embedded corpus, and workers from dist/worker.mjs with the
# heuristic researcher, for WALL seconds; then everything stops cleanly and the evidence goes to
# $OUT, for bench/gpu-run/report.ts to turn into docs/GPU-RUN.md. Run from the repository root:
#
#   bench/gpu-run/run.sh                                   # GPU machine: node from .devnode/node.xz
#   NODE=node PROFILE=cpu-tiny BUDGET=3 WALL=60 VOCAB_SIZE=512 AUTORESEARCH_PYTHON=/usr/bin/python3 bench/gpu-run/run.sh
#
# Needs: dist/ (`pnpm bundle`), a Python with torch and sentencepiece, git, and node (NODE, else
# .devnode/node.xz is unpacked to /tmp/node). Settings, from the environment:
#   BUDGET=90        training seconds per experiment        WALL=480     seconds from start to stop
#   PROFILE=gpu      trainer profile (gpu | cpu-tiny)       VOCAB_SIZE   tokenizer size (prepare.py's default)
#   WORKERS          worker processes, spread over the GPUs (default: one `worker join --gpus all`,
#                    i.e. one loop per GPU); WORKERS=2 on one GPU runs two workers sharing it
#   BASELINE_RUNS=2  REPLICATIONS=1                          the ratchet's knobs for a short run
#   CORPUS           the embedded corpus (default: .bench-corpus if present, else dist/corpus)
#   OUT=gpu-run-out  WORK=/tmp/gpu-run  PORT=18377
# $OUT receives at most 8 plain files (the device machine's limit): coordinator.db, results.tsv,
# run.env, machine.txt, logs.tgz (the coordinator's, the campaign's and every worker's log).
set -euo pipefail

START=$(date +%s)
# The command as given (the knobs set in the environment), for the report's "Command".
GIVEN=()
for v in BUDGET WALL PROFILE WORKERS VOCAB_SIZE BASELINE_RUNS REPLICATIONS CORPUS NODE AUTORESEARCH_PYTHON; do
  if [ -n "${!v:-}" ]; then GIVEN+=("$v=${!v}"); fi
done
OUT=${OUT:-gpu-run-out}
WORK=${WORK:-/tmp/gpu-run}
BUDGET=${BUDGET:-90}
WALL=${WALL:-480}
PROFILE=${PROFILE:-gpu}
PORT=${PORT:-18377}
BASELINE_RUNS=${BASELINE_RUNS:-2}
REPLICATIONS=${REPLICATIONS:-1}
CAMPAIGN=gpurun
export AUTORESEARCH_PYTHON=${AUTORESEARCH_PYTHON:-python3}
unset ANTHROPIC_API_KEY   # the heuristic researcher: no key, no network

[ -f dist/coordinator.mjs ] && [ -f dist/worker.mjs ] || { echo "error: dist/ has no bundles: run \`pnpm bundle\` first (and carry dist/)" >&2; exit 2; }
if [ -z "${CORPUS:-}" ]; then
  if [ -d .bench-corpus/datasets-sotu ]; then CORPUS=.bench-corpus; else CORPUS=dist/corpus; fi
fi
export AUTORESEARCH_EMBEDDED_DIR; AUTORESEARCH_EMBEDDED_DIR=$(cd "$CORPUS" && pwd)

rm -rf "$WORK"
mkdir -p "$OUT" "$WORK/logs"
OUT=$(cd "$OUT" && pwd)
log() { echo "[run.sh +$(( $(date +%s) - START ))s] $*" | tee -a "$WORK/logs/run.log"; }

if [ -z "${NODE:-}" ]; then
  [ -f .devnode/node.xz ] || { echo "error: no NODE given and no .devnode/node.xz to unpack" >&2; exit 2; }
  xz -dc .devnode/node.xz > /tmp/node && chmod +x /tmp/node
  NODE=/tmp/node
fi

# Each line of a log with the seconds since the epoch in front (bash's own clock: no fork per line).
stamp() { while IFS= read -r line; do printf '%s %s\n' "${EPOCHREALTIME:-$(date +%s)}" "$line"; done; }

GPUS=$("$AUTORESEARCH_PYTHON" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)')
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm), $(nproc) CPU cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) memory"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "node: $("$NODE" --version)"
  "$AUTORESEARCH_PYTHON" -c 'import sys, torch; print("python:", sys.version.split()[0]); print("torch:", torch.__version__, "cuda", torch.version.cuda)'
  echo "gpus: $GPUS"
  if [ "$GPUS" -gt 0 ]; then nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu: /'; fi
} > "$WORK/machine.txt" 2>&1
cat "$WORK/machine.txt"

# One `worker join --gpus all` (a loop per GPU) unless WORKERS asks for separate worker processes.
if [ -n "${WORKERS:-}" ]; then NWORKERS=$WORKERS; else NWORKERS=$(( GPUS > 0 ? GPUS : 1 )); fi
SHARED=no
if [ -n "${WORKERS:-}" ] && [ "$GPUS" -gt 0 ] && [ "$WORKERS" -gt "$GPUS" ]; then SHARED=yes; fi
# Verification must come from another contributor. Separate worker processes get a token (a
# contributor) each; the loops of one `--gpus all` process share one, so they verify each other
# only with self-verification allowed.
SELF_VERIFY=()
if [ -z "${WORKERS:-}" ] || [ "$WORKERS" -lt 2 ]; then SELF_VERIFY=(--allow-self-verification); fi
VOCAB=()
if [ -n "${VOCAB_SIZE:-}" ]; then VOCAB=(--vocab-size "$VOCAB_SIZE"); fi

C=("$NODE" dist/coordinator.mjs --data "$WORK/coordinator")
log "campaign create ($PROFILE, budget $BUDGET s, corpus $AUTORESEARCH_EMBEDDED_DIR)"
"${C[@]}" campaign create "$CAMPAIGN" --budget "$BUDGET" --profile "$PROFILE" --baseline-runs "$BASELINE_RUNS" --replications "$REPLICATIONS" "${VOCAB[@]}" "${SELF_VERIFY[@]}" 2>&1 | stamp > "$WORK/logs/campaign.log" \
  || { echo "error: campaign create failed:" >&2; cat "$WORK/logs/campaign.log" >&2; exit 1; }
tail -1 "$WORK/logs/campaign.log"

"${C[@]}" start --port "$PORT" > >(stamp > "$WORK/logs/coordinator.log") 2>&1 &
COORD=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 1 60); do grep -q 'listening on' "$WORK/logs/coordinator.log" 2>/dev/null && break; sleep 0.5; done
grep -q 'listening on' "$WORK/logs/coordinator.log" || { echo "error: the coordinator did not start:" >&2; cat "$WORK/logs/coordinator.log" >&2; exit 1; }
log "coordinator up at $URL"

WORKERS_START=$(date +%s)
PIDS=()
if [ -z "${WORKERS:-}" ]; then
  TOKEN=$("${C[@]}" token create gpu-run)
  "$NODE" dist/worker.mjs join "$URL" --token "$TOKEN" --name gpurun --gpus all --state "$WORK/worker" > >(stamp > "$WORK/logs/worker.log") 2>&1 &
  PIDS+=($!)
else
  for k in $(seq 0 $(( WORKERS - 1 ))); do
    if [ "$GPUS" -gt 0 ]; then DEV=$(( k % GPUS )); else DEV=; fi
    TOKEN=$("${C[@]}" token create "gpu-run-$k")
    CUDA_VISIBLE_DEVICES=${DEV:-${CUDA_VISIBLE_DEVICES:-}} "$NODE" dist/worker.mjs join "$URL" --token "$TOKEN" --name "gpurun-w$k" --state "$WORK/worker-$k" > >(stamp > "$WORK/logs/worker-$k.log") 2>&1 &
    PIDS+=($!)
  done
fi
log "$NWORKERS worker(s) on $GPUS GPU(s) (shared: $SHARED); stopping at +${WALL}s"

alive() { for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while [ $(( $(date +%s) - START )) -lt "$WALL" ] && alive "${PIDS[@]}"; do sleep 2; done
WORKERS_STOP=$(date +%s)
alive "${PIDS[@]}" || log "every worker exited before the wall time"

# SIGTERM: a worker abandons its current run and exits; results not yet delivered stay spooled.
log "stopping the workers"
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for _ in $(seq 1 40); do alive "${PIDS[@]}" || break; sleep 0.5; done
for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
wait "${PIDS[@]}" 2>/dev/null || true

"${C[@]}" export "$CAMPAIGN" --tsv > "$OUT/results.tsv"
log "stopping the coordinator"
kill -TERM "$COORD" 2>/dev/null || true
for _ in $(seq 1 40); do kill -0 "$COORD" 2>/dev/null || break; sleep 0.5; done
kill -KILL "$COORD" 2>/dev/null || true
wait "$COORD" 2>/dev/null || true
# Closed cleanly, the database is one file; a WAL left by a kill goes along so nothing is lost.
cp "$WORK/coordinator/coordinator.db" "$OUT/coordinator.db"
if [ -s "$WORK/coordinator/coordinator.db-wal" ]; then cp "$WORK/coordinator/coordinator.db-wal" "$OUT/coordinator.db-wal"; fi

cp "$WORK/machine.txt" "$OUT/machine.txt"
cat > "$OUT/run.env" <<EOF
campaign=$CAMPAIGN
profile=$PROFILE
budget=$BUDGET
wall=$WALL
gpus=$GPUS
workers=$NWORKERS
workers_env=${WORKERS:-}
shared_gpu=$SHARED
baseline_runs=$BASELINE_RUNS
replications=$REPLICATIONS
self_verification=$([ ${#SELF_VERIFY[@]} -gt 0 ] && echo yes || echo no)
vocab_size=${VOCAB_SIZE:-}
start=$START
workers_start=$WORKERS_START
workers_stop=$WORKERS_STOP
end=$(date +%s)
command=${GIVEN[*]} bench/gpu-run/run.sh
EOF
sleep 1   # the log stampers finish their last lines
tar -czf "$OUT/logs.tgz" -C "$WORK" logs
log "done: $(( $(grep -c . "$OUT/results.tsv") - 1 )) experiments in results.tsv; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
