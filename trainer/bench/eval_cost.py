"""The trusted evaluator's cost at the gpu profile's full size (EVAL_TOKENS), against an in-process
evaluation of the same model (what train.py did before the metric moved out of it).

  python eval_cost.py RUN_DIR DATA_DIR OUT_JSON

RUN_DIR holds train.py, prepare.py and model.safetensors; DATA_DIR a prepared data set. Its
validation tokens are tiled into a scratch copy until they fill EVAL_TOKENS, so a small corpus
measures the full-size cost. Prints and writes: in-process seconds (eager and compiled), the
evaluator's seconds (load, score), and the val_bpb of each (the evaluator sends bf16 logits).
"""
import json
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np

run_dir, data_dir, out = sys.argv[1:4]
here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != here]  # bench/profile.py would shadow the stdlib
trainer = os.path.dirname(here)
sys.path.insert(0, run_dir)
import prepare  # noqa: E402  (the run's locked copy)
import torch  # noqa: E402

tiled = "/tmp/eval-cost-data"
shutil.rmtree(tiled, ignore_errors=True)
os.makedirs(tiled)
for f in ("meta.json", "token_bytes.npy", "tokenizer.model"):
    shutil.copy(os.path.join(data_dir, f), tiled)
val = np.fromfile(os.path.join(data_dir, "val.bin"), dtype=np.uint16)
starts = np.load(os.path.join(data_dir, "val_docs.npy"))
reps = math.ceil(prepare.EVAL_TOKENS * 1.2 / len(val))
np.tile(val, reps).tofile(os.path.join(tiled, "val.bin"))
np.save(os.path.join(tiled, "val_docs.npy"), np.concatenate([starts + i * len(val) for i in range(reps)]))
os.environ["AUTORESEARCH_DATA"] = tiled
data = prepare.load_data(tiled)
rows = np.stack(list(prepare.packed_rows(data.tokens("val"), data.doc_starts("val"), range(len(data.doc_starts("val"))),
                                         prepare.SEQ_LEN + 1, data.bos_id))[:prepare.EVAL_TOKENS // prepare.SEQ_LEN])
result = {"rows": len(rows), "tokens": int(rows[:, 1:].size)}

import train  # noqa: E402
state, config = prepare.load_checkpoint(os.path.join(run_dir, prepare.CHECKPOINT))
model = train.build_model(config)
model.load_state_dict(state)
model.eval()
token_bytes = torch.from_numpy(data.token_bytes.astype(np.int64)).cuda()


def in_process(m, batch=128):
    torch.cuda.synchronize()
    t0 = time.time()
    nats, nbytes = 0.0, 0
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        for i in range(0, len(rows), batch):
            chunk = torch.from_numpy(rows[i:i + batch]).cuda()
            x, y = chunk[:, :-1], chunk[:, 1:]
            logits = m(x).float()
            loss = torch.logsumexp(logits, -1) - logits.gather(-1, y[..., None]).squeeze(-1)
            b = token_bytes[y]
            nats += float((loss.double() * (b > 0)).sum())
            nbytes += int(b.sum())
    torch.cuda.synchronize()
    return time.time() - t0, nats / (math.log(2) * nbytes)


result["in_process_eager_s"], result["in_process_bpb"] = in_process(model)
compiled = torch.compile(model, dynamic=False)
in_process(compiled)  # compile
result["in_process_compiled_s"], _ = in_process(compiled)
del model, compiled
torch.cuda.empty_cache()

env = dict(os.environ, AUTORESEARCH_DATA=tiled, AUTORESEARCH_PROFILE="gpu")
t0 = time.time()
proc = subprocess.run([sys.executable, "-I", "-B", os.path.join(trainer, "evaluate.py"), "--run-dir", run_dir, "--seed", "1"],
                      env=env, capture_output=True, text=True)
result["evaluator_process_s"] = time.time() - t0
line = [l for l in proc.stdout.splitlines() if l.startswith("evaluation: ")]
result["evaluator"] = json.loads(line[-1][len("evaluation: "):]) if line else {"stdout": proc.stdout[-2000:], "stderr": proc.stderr[-2000:]}
print(json.dumps(result, indent=2))
with open(out, "w") as f:
    json.dump(result, f, indent=2)
