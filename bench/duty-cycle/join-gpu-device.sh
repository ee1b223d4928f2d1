#!/usr/bin/env bash
# Device driver of the 2026-12-04 run (issue 17 part 2, docs/PERFORMANCE.md): `worker join` at 60 s and 300 s budgets with
# model-changing edits (AGENT=model-changing), one after the other
# in the background (setsid), logs in /tmp/duty-logs (nvidia-smi every 5 s in gpu.csv, the machine's
# threads every 2 s in tasks.txt), copied to $OUT when the call ends.
#   bash bench/duty-cycle/join-gpu-device.sh start SECONDS   # set up, start, wait up to SECONDS
#   bash bench/duty-cycle/join-gpu-device.sh wait SECONDS    # wait up to SECONDS more (or until both runs are done)
# Run from the repository root with dist/ (npm run bundle) and .devnode/ (node.xz; the bubblewrap and
# libcap2 .debs from `apt-get download`, used where the machine has no bwrap) carried. HARNESS: the
# join-gpu.sh to run (that run used copies of this commit's join-gpu.sh and model-changing-agent.py
# in dist/, because the device copies another checkout). BUDGETS: which runs, default "60 300" (the
# 2026-12-05 call ran BUDGETS=300 only). BALLAST_MB: memory a separate process holds on the GPU for
# the whole call, so the runs see a smaller card (an 80 GB card on the H200: 62000); UNITS60: units of
# the 60 s run (default 6).
set -u
L=/tmp/duty-logs
HARNESS=${HARNESS:-bench/duty-cycle/join-gpu.sh}
if [ "${1:-}" = start ]; then
  mkdir -p $L
  xz -dc .devnode/node.xz > /tmp/node && chmod +x /tmp/node
  if ! command -v bwrap >/dev/null 2>&1; then
    mkdir -p /tmp/bw; for f in .devnode/*.deb; do dpkg -x "$f" /tmp/bw; done
    printf '#!/bin/sh\nLD_LIBRARY_PATH=/tmp/bw/usr/lib/x86_64-linux-gnu:/tmp/bw/lib/x86_64-linux-gnu exec /tmp/bw/usr/bin/bwrap "$@"\n' > /tmp/bw/bwrap; chmod +x /tmp/bw/bwrap
    export AUTORESEARCH_BWRAP=/tmp/bw/bwrap PATH=/tmp/bw:$PATH
  fi
  export AUTORESEARCH_PYTHON=$(command -v python3)
  { date -u; uname -srm; nproc; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python3 -c 'import torch; print(torch.__version__, torch.version.cuda)'; bwrap --version; /tmp/node --version; } > $L/machine.txt 2>&1
  cat $L/machine.txt
  setsid env HARNESS="$HARNESS" bash -c "
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 5 > $L/gpu.csv 2>&1 &
    while :; do echo \"\$(date +%T) \$(ps -eLo pid= | wc -l)\"; sleep 2; done > $L/tasks.txt 2>&1 &
    if [ -n \"${BALLAST_MB:-}\" ]; then
      python3 -c 'import sys, time, torch; x = torch.empty(int(sys.argv[1]) * 2**20, dtype=torch.uint8, device=\"cuda\"); print(\"ballast\", x.numel() >> 20, \"MiB\", flush=True); time.sleep(10**6)' ${BALLAST_MB:-0} > $L/ballast.log 2>&1 &
      sleep 15
    fi
    case \" ${BUDGETS:-60 300} \" in *' 60 '*)
      AGENT=model-changing BASELINE_RUNS=1 BUDGET=60 UNITS=${UNITS60:-6} WORK=/tmp/j60 NODE=/tmp/node bash "$HARNESS" > $L/join-60s.log 2>&1
      echo done60 > $L/status;; esac
    case \" ${BUDGETS:-60 300} \" in *' 300 '*)
      AGENT=model-changing BASELINE_RUNS=1 BUDGET=300 UNITS=3 WORK=/tmp/j300 PORT=8392 NODE=/tmp/node bash "$HARNESS" > $L/join-300s.log 2>&1;; esac
    echo done > $L/status
  " > $L/driver.log 2>&1 < /dev/null &
fi
end=$(( $(date +%s) + ${2:-540} ))
while [ "$(date +%s)" -lt $end ] && ! grep -qx done $L/status 2>/dev/null; do sleep 5; done
cp $L/* "$OUT"/ 2>/dev/null
cat $L/status 2>/dev/null; tail -c 1500 $L/driver.log; for f in $L/join-*.log; do echo "== $f"; grep -v ' step ' "$f" | tail -30; done
