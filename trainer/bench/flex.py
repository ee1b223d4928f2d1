# Bench-only: flex_attention forward + backward at the trainer's gpu shapes under several kernel_options (docs/TRAINER.md).
import sys
import time
import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention
B, H, T, D = 128, 4, 2048, 128
dev = "cuda"
masks = {w: create_block_mask(lambda b, h, q, kv, w=w: (q >= kv) & (q - kv < w), None, None, T, T, device=dev) for w in (1024, 2048)}
q, k, v = (torch.randn(B, H, T, D, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
g = torch.randn(B, H, T, D, device=dev, dtype=torch.bfloat16)
variants = {
  "default": {},
  "tma": {"USE_TMA": True},
  "safe": {"ROWS_GUARANTEED_SAFE": True},
  "bwd64x128w8": {"bwd_BLOCK_M1": 64, "bwd_BLOCK_N1": 128, "bwd_BLOCK_M2": 128, "bwd_BLOCK_N2": 64, "bwd_num_warps": 8, "bwd_num_stages": 3},
  "bwd64x128w4": {"bwd_BLOCK_M1": 64, "bwd_BLOCK_N1": 128, "bwd_BLOCK_M2": 128, "bwd_BLOCK_N2": 64, "bwd_num_warps": 4, "bwd_num_stages": 3},
  "bwd32x128w4s4": {"bwd_BLOCK_M1": 32, "bwd_BLOCK_N1": 128, "bwd_BLOCK_M2": 128, "bwd_BLOCK_N2": 32, "bwd_num_warps": 4, "bwd_num_stages": 4},
  "fwd128x128w8": {"fwd_BLOCK_M": 128, "fwd_BLOCK_N": 128, "fwd_num_warps": 8, "fwd_num_stages": 3},
  "fwd128x64w8s3": {"fwd_BLOCK_M": 128, "fwd_BLOCK_N": 64, "fwd_num_warps": 8, "fwd_num_stages": 3},
  "flash": {"BACKEND": "FLASH"},
}
only = sys.argv[1:] or list(variants)
for name in only:
    opts = variants[name]
    try:
        f = torch.compile(lambda q, k, v, m: flex_attention(q, k, v, block_mask=m, kernel_options=opts or None), dynamic=False)
        t0 = time.time()
        for w in masks:
            o = f(q, k, v, masks[w]); o.backward(g)
        torch.cuda.synchronize(); tc = time.time() - t0
        res = {}
        for w, m in masks.items():
            for _ in range(2):
                o = f(q, k, v, m); o.backward(g)
            torch.cuda.synchronize()
            e = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
            n = 5; fw = bw = 0.0
            for _ in range(n):
                e[0].record(); o = f(q, k, v, m); e[1].record(); o.backward(g); e[2].record(); torch.cuda.synchronize()
                fw += e[0].elapsed_time(e[1]); bw += e[1].elapsed_time(e[2])
            res[w] = (fw / n, bw / n)
        # per step of the trainer: 6 short-window layers + 2 full layers, 2 micro-batches
        step = 2 * (6 * sum(res[1024]) + 2 * sum(res[2048]))
        print(f"{name:16s} compile {tc:5.1f}s | w1024 fwd {res[1024][0]:.2f} bwd {res[1024][1]:.2f} ms | w2048 fwd {res[2048][0]:.2f} bwd {res[2048][1]:.2f} ms | per step {step:.1f} ms", flush=True)
    except Exception as ex:
        print(f"{name:16s} FAILED {type(ex).__name__}: {str(ex)[:300]}", flush=True)
    torch._dynamo.reset()
