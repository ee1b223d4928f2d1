#!/usr/bin/env bash
# `worker join` on a GPU as a volunteer runs it: the release bundle's coordinator (SQLite, git,
# fastify on loopback) with one gpu-profile campaign, and the bundle's worker joining it with the
# heuristic researcher, in the bubblewrap sandbox. Prints the worker's log; its per-unit lines
# ("GPU duty cycle X% (Ns training of Ms ...)", cumulative) give the wall cost of each run.
#
#   npm run bundle && BUDGET=60 UNITS=8 bash bench/duty-cycle/join-gpu.sh      # on the GPU box, from the repo root
# Settings: BUDGET (s), UNITS (trained units), PROFILE (gpu; cpu-tiny for a smoke run here), OVERLAP (1: the default; 0: --no-overlap for a before/after),
# BASELINE_RUNS (baselines of the best per hardware class, default 2), AGENT (heuristic, the default;
# model-changing: bench/duty-cycle/model-changing-agent.py as --agent-cmd, an edit that recompiles the model in every explore),
# NODE (node binary), DIST (the bundle), WORK (scratch), PORT.
set -euo pipefail
BUDGET=${BUDGET:-60}
UNITS=${UNITS:-8}
NODE=${NODE:-node}
DIST=${DIST:-$PWD/dist}
WORK=${WORK:-$(mktemp -d)}
PORT=${PORT:-8391}
mkdir -p "$WORK"
data=$WORK/coordinator
# A WORK of an earlier run is reused as it is (its campaign, token and the worker's warm caches):
# a second run there measures warm runs only, e.g. OVERLAP=0 after a first run with overlap.
if [ ! -f "$WORK/token" ]; then
  "$NODE" "$DIST/coordinator.mjs" --data "$data" campaign create bench --profile "${PROFILE:-gpu}" --budget "$BUDGET" \
    --replications 1 --baseline-runs "${BASELINE_RUNS:-2}" --allow-self-verification --review none >&2
  "$NODE" "$DIST/coordinator.mjs" --data "$data" token create bench > "$WORK/token"
fi
token=$(cat "$WORK/token")
"$NODE" "$DIST/coordinator.mjs" --data "$data" start --port "$PORT" > "$WORK/coordinator.log" 2>&1 &
coordinator=$!
trap 'kill $coordinator 2>/dev/null || true' EXIT
for _ in $(seq 100); do "$NODE" -e "fetch('http://127.0.0.1:$PORT/').then(() => process.exit(0), () => process.exit(1))" && break; sleep 0.3; done
extra=()
[ "${OVERLAP:-1}" = 0 ] && extra+=(--no-overlap)
if [ "${AGENT:-heuristic}" = model-changing ]; then
  export MODEL_CHANGING_STATE=$WORK/model-changing-agent.n
  extra+=(--agent-cmd "python3 $(cd "$(dirname "$0")" && pwd)/model-changing-agent.py")
fi
started=$(date +%s)
AUTORESEARCH_TOKEN=$token "$NODE" "$DIST/worker.mjs" join "http://127.0.0.1:$PORT" --name bench --state "$WORK/worker" \
  --trainer "$DIST/trainer" --max-units "$UNITS" "${extra[@]}" 2>&1
echo "wall: $(( $(date +%s) - started ))s for $UNITS units at a ${BUDGET}s budget"
