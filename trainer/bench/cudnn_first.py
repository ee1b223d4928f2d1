# Bench-only: how long cuDNN's fused attention takes on its first calls in a fresh process.
import time; t = time.time()
import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend
torch.zeros(1, device="cuda"); print(f"import + cuda init {time.time() - t:.2f}s", flush=True)
def run(B, label, n=2, H=4, T=2048, D=128):
    q, k, v = (torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16).transpose(1, 2).requires_grad_(True) for _ in range(3))
    torch.cuda.synchronize()
    for i in range(n):
        t0 = time.time()
        with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.cuda.synchronize(); t1 = time.time()
        o.backward(torch.ones_like(o)); torch.cuda.synchronize(); t2 = time.time()
        with torch.no_grad(), sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
            F.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.cuda.synchronize(); t3 = time.time()
        print(f"{label} call {i}: fwd {t1 - t0:.2f}s bwd {t2 - t1:.2f}s fwd-nograd {t3 - t2:.2f}s", flush=True)
run(1, "B=1")
run(128, "B=128")
run(64, "B=64")
