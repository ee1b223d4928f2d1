#!/usr/bin/env python3
"""An `--agent-cmd` for bench/duty-cycle/join-gpu.sh (AGENT=model-changing): every call makes the
next edit of train.py that changes the model's graph (MLP ratio, logit soft-cap, depth in turn, as
bench/duty-cycle/gpu.ts does for `worker solo`), so no compile cache helps and every explore
recompiles: the worst case for the GPU duty cycle. It runs in the unit's workspace; a counter file
(MODEL_CHANGING_STATE, default /tmp/model-changing-agent.n) says which edit comes next."""
import json
import os
import re

EDITS = [
    (r"^MLP_RATIO = (\d+)", lambda v: str(3 if int(v) == 4 else 4), "MLP ratio"),
    (r"^LOGIT_SOFTCAP = ([\d.]+)", lambda v: f"{float(v) + 0.5:.1f}", "logit soft-cap"),
    (r"^DEPTH = (\d+)", lambda v: str(9 if int(v) == 8 else 8), "depth"),
]

state = os.environ.get("MODEL_CHANGING_STATE", "/tmp/model-changing-agent.n")
n = int(open(state).read()) if os.path.exists(state) else 0
with open(state, "w") as f:
    f.write(str(n + 1))
pattern, change, what = EDITS[n % len(EDITS)]
with open("train.py") as f:
    source = f.read()
match = re.search(pattern, source, re.M)
old = match.group(1)
source = source[: match.start(1)] + change(old) + source[match.end(1) :]
with open("train.py", "w") as f:
    f.write(source)
if os.environ.get("AUTORESEARCH_RESULT_FILE"):
    with open(os.environ["AUTORESEARCH_RESULT_FILE"], "w") as f:
        json.dump({"description": f"{what} {old} -> {change(old)} (model-changing bench edit {n})", "rationale": "duty-cycle bench", "follow_ups": []}, f)
