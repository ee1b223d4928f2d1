# Bench-only: attention forward + backward at the trainer's gpu shapes: flex (full and window 1024) against
# SDPA's flash, cuDNN and memory-efficient kernels (causal, and with a dense window mask), each checked
# against a float32 reference (docs/TRAINER.md, third session).
import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend
from torch.nn.attention.flex_attention import create_block_mask, flex_attention
B, H, T, D = 128, 4, 2048, 128
dev = "cuda"
def mk():  # (B, T, H, D) transposed to (B, H, T, D) like the trainer
    return torch.randn(B, T, H, D, device=dev, dtype=torch.bfloat16).transpose(1, 2).requires_grad_(True)
q, k, v = mk(), mk(), mk()
g = torch.randn(B, H, T, D, device=dev, dtype=torch.bfloat16)
masks = {w: create_block_mask(lambda b, h, qi, kv, w=w: (qi >= kv) & (qi - kv < w), None, None, T, T, device=dev) for w in (1024, 2048)}
i = torch.arange(T, device=dev)
dense = {w: (i[:, None] >= i[None, :]) & (i[:, None] - i[None, :] < w) for w in (1024, 2048)}
flex = torch.compile(flex_attention, dynamic=False)
def timeit(f):
    for _ in range(2):
        o = f(); o.backward(g)
    torch.cuda.synchronize()
    e = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
    fw = bw = 0.0; n = 5
    for _ in range(n):
        e[0].record(); o = f(); e[1].record(); o.backward(g); e[2].record(); torch.cuda.synchronize()
        fw += e[0].elapsed_time(e[1]); bw += e[1].elapsed_time(e[2])
    return fw / n, bw / n
def ref_check(f, w):
    qs, ks, vs = (t[:2].detach().float() for t in (q, k, v))
    att = (qs @ ks.transpose(-1, -2)) / D ** 0.5
    att = att.masked_fill(~dense[w], float("-inf")).softmax(-1)
    r = att @ vs
    o = f()[:2].float()
    return ((o - r).norm() / r.norm()).item()
cases = {
    "flex w2048": (lambda: flex(q, k, v, block_mask=masks[2048]), 2048),
    "flex w1024": (lambda: flex(q, k, v, block_mask=masks[1024]), 1024),
}
for name, be in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION)):
    def causal(be=be):
        with sdpa_kernel([be]):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    def masked(be=be):
        with sdpa_kernel([be]):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=dense[1024])
    cases[f"sdpa-{name} causal"] = (causal, 2048)
    cases[f"sdpa-{name} mask w1024"] = (masked, 1024)
flops = {2048: 4 * B * H * D * T * (T + 1) / 2, 1024: 4 * B * H * D * sum(min(t + 1, 1024) for t in range(T))}
for name, (f, w) in cases.items():
    try:
        err = ref_check(f, w)
        fw, bw = timeit(f)
        print(f"{name:26s} fwd {fw:7.2f} ms  bwd {bw:7.2f} ms  total {fw + bw:7.2f}  rel.err {err:.1e}  ~{flops[w] / (fw / 1e3) / 1e12:.0f} TFLOP/s fwd", flush=True)
    except Exception as ex:
        print(f"{name:26s} FAILED {type(ex).__name__}: {str(ex)[:200]}", flush=True)
