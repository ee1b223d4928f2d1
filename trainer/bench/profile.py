# Bench-only: profile a few training steps of trainer/train.py (or $TRAIN, a variant of it) on the GPU.
# Runs train.py's setup, 4 warm-up and 5 timed steps, then 3 steps under torch.profiler.
# The kernel table lists both the CPU-side op (e.g. aten::mm) and its kernels, each with device time:
# "GPU busy" and the categories count most time twice (docs/TRAINER.md halves them).
# The names that ruff would call undefined come from train.py's setup, run by exec() below.
# ruff: noqa: F821
import os
import sys
import time
sys.path.insert(0, "trainer")
src = open(os.environ.get("TRAIN", "trainer/train.py")).read()
exec(compile(src[:src.index("# Training loop")], "train.py", "exec"))
from torch.profiler import profile, ProfilerActivity
loader = make_loader(data, device_batch, device)
x, y = next(loader)
def one_step():
    global x, y
    for _ in range(grad_accum):
        with autocast:
            loss = model(x, y)
        (loss / grad_accum).backward()
        x, y = next(loader)
    for opt in optimizers:
        opt.step()
    model.zero_grad(set_to_none=True)
    return loss.item()
for _ in range(4):
    one_step()
torch.cuda.synchronize(); t = time.time()
for _ in range(5):
    l = one_step()
print(f"loss after 9 steps {l:.4f}", flush=True)
torch.cuda.synchronize(); print(f"step time {(time.time() - t) / 5 * 1000:.1f} ms", flush=True)
with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
    for _ in range(3):
        one_step()
    torch.cuda.synchronize()
rows = sorted(prof.key_averages(), key=lambda e: -getattr(e, "self_device_time_total", 0))
total = sum(getattr(e, "self_device_time_total", 0) for e in rows)
print(f"GPU busy per step: {total / 3 / 1000:.1f} ms")
cats = {}
for e in rows:
    t = getattr(e, "self_device_time_total", 0)
    if not t: continue
    n = e.key.lower()
    c = ("gemm" if any(k in n for k in ("gemm", "cutlass", "sm90", "nvjet", "matmul", "mm_")) else
         "flex_attention" if "flex" in n else "triton_fused" if n.startswith("triton") else
         "embedding" if "embed" in n or "index" in n or "scatter" in n or "sort" in n else "other")
    cats[c] = cats.get(c, 0) + t
for c, t in sorted(cats.items(), key=lambda kv: -kv[1]):
    print(f"{c:16s} {t / 3 / 1000:8.1f} ms/step  {100 * t / total:5.1f}%")
for e in rows[:45]:
    print(f"{getattr(e, 'self_device_time_total', 0) / 3 / 1000:8.2f} ms/step  x{e.count // 3:<4d} {e.key[:150]}")
