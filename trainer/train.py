"""
train.py: the agent's playground. A small GPT trained for a fixed wall-clock budget. Everything here
may change; prepare.py and evaluate.py may not.

Reads top-down: settings -> model -> optimizer -> training loop -> summary -> checkpoint.
Run: python train.py && python evaluate.py   (after python prepare.py; budget and profile come from
the environment). Training sees only the training split. At the end it saves the weights with
prepare.save_model; evaluate.py, in a fresh sandbox, rebuilds the model with `build_model(config)`
below, feeds it validation inputs (never the targets) and computes val_bpb itself: the model's
forward(idx) must return the logits, (B, T, vocab), and may look only at earlier tokens.
"""

import time

T_START = time.time()  # total_seconds counts from here, imports included

import os

# Compile caches live in the shared cache folder so a repeated experiment starts warm.
# They must be set before torch is imported.
_CACHE = os.environ.get("AUTORESEARCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "autoresearch-grid")
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(_CACHE, "compile", "inductor"))
os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(_CACHE, "compile", "triton"))
# AOTAutograd's cache skips graphs with a custom autograd.Function unless told otherwise, and a warm
# start then re-traces and re-partitions the whole model (+5 s here). SoftcapCrossEntropy below only
# calls torch ops, which the cache key covers.
os.environ.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE_ALLOW_CUSTOM_AUTOGRAD", "1")

import gc
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from prepare import PROFILE, SEED, SEQ_LEN, TIME_BUDGET, load_data, make_loader, save_model

T_IMPORTS = time.time() - T_START

# ---------------------------------------------------------------------------------------------
# Hyperparameters (gpu profile). One per line: tools rewrite them with a regex.

DEPTH = 8  # transformer blocks
ASPECT_RATIO = 64  # model_dim = DEPTH * ASPECT_RATIO, rounded up to a multiple of HEAD_DIM
HEAD_DIM = 128  # channels per attention head
MLP_RATIO = 4  # hidden width of the MLP relative to model_dim
WINDOW_PATTERN = "L"  # per layer, repeated: S = sliding window, L = full context (the last layer is always L)
SHORT_WINDOW = 0.5  # sliding window as a fraction of the context length
LOGIT_SOFTCAP = 15.0  # logits are squashed into (-cap, cap): keeps early training calm
TOTAL_BATCH_TOKENS = 2**19  # tokens per optimizer step (reached by gradient accumulation)
DEVICE_BATCH = 64  # rows of SEQ_LEN tokens per forward/backward pass (128: 1.8% more tok/s, twice the memory)
FLEX_OPTIONS = {}  # kernel_options for flex_attention (block sizes, warps, stages; "bwd_"/"fwd_" prefixes)

# Sizes for the cpu-tiny profile (CPU demos and tests): tens of steps in a few seconds on 2 cores.
TINY_DEPTH = 2  # blocks
TINY_MODEL_DIM = 128  # width
TINY_HEAD_DIM = 64  # channels per head
TINY_TOTAL_BATCH_TOKENS = 2**10  # tokens per optimizer step
TINY_DEVICE_BATCH = 8  # rows per forward/backward pass

# Optimization. Learning rates of the AdamW groups are scaled by (model_dim / 768) ** -0.5.
MATRIX_LR = 0.04  # Muon, for the 2-D weights inside the blocks
EMBEDDING_LR = 0.6  # AdamW, token and value embeddings
UNEMBEDDING_LR = 0.004  # AdamW, lm_head
SCALAR_LR = 0.5  # AdamW, residual mixing scalars
WEIGHT_DECAY = 0.0  # decoupled weight decay on the Muon matrices
ADAM_BETA1 = 0.8  # AdamW momentum
ADAM_BETA2 = 0.95  # AdamW second-moment decay
MUON_MOMENTUM = 0.95  # Muon momentum (Nesterov)
WARMUP_FRAC = 0.0  # share of the time budget spent ramping the learning rate up
WARMDOWN_FRAC = 0.5  # share of the time budget at the end spent decaying it
FINAL_LR_FRAC = 0.0  # learning rate at the end, relative to the peak

# Loop.
UNTIMED_STEPS = 2 if PROFILE == "gpu" else 1  # first steps (compilation, allocator warm-up) do not count
LOG_EVERY = 1.0 if PROFILE == "gpu" else 0.5  # seconds between progress lines

# ---------------------------------------------------------------------------------------------
# Device and precision.

if torch.cuda.is_available():
    device = torch.device("cuda")
elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
    device = torch.device("mps")
else:
    device = torch.device("cpu")
torch.manual_seed(SEED)
if device.type == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
# The residual stream in bf16 on GPU: half the bytes for all the elementwise work between the
# matmuls, which is over a third of a step at this size (measured 8% more tokens/s on an H100).
RESIDUAL_DTYPE = torch.bfloat16 if device.type == "cuda" else torch.float32
if device.type == "cpu":
    # Half the cores: the small ops of a tiny model gain little from more threads, and an OpenMP
    # thread that loses its core to another process stalls all the others at every barrier.
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    if sys.platform.startswith("linux"):
        # glibc hands large freed blocks back to the OS, so every big tensor op page-faults its output
        # in again (half the time of a CPU step). Keep freed memory in the process instead.
        import ctypes
        libc = ctypes.CDLL(None)
        libc.mallopt(-4, 0)  # M_MMAP_MAX: no mmap for large blocks
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: do not give the heap back

# Debian's PyTorch 1.13 multiplies fp32 matrices with the reference BLAS (~3 GFLOP/s on two cores).
# oneDNN does the same products about 30x faster, so on such a build the linear layers use it.
ONEDNN_LINEAR = device.type == "cpu" and torch.backends.mkldnn.is_available() and "BLAS_INFO=generic" in torch.__config__.show()


def _onednn_mm(a, w):  # a @ w.T for 2-D fp32 tensors, through oneDNN
    return torch._C._nn.mkldnn_linear(a.contiguous().to_mkldnn(), w.contiguous().to_mkldnn(), None).to_dense()


def matmul(a, b):  # a @ b for (batches of) matrices, outside autograd
    if not ONEDNN_LINEAR:
        return a @ b
    if a.dim() == 3:
        return torch.stack([_onednn_mm(x, y.t()) for x, y in zip(a, b)])
    return _onednn_mm(a, b.t())


class OneDNNLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return _onednn_mm(x.reshape(-1, x.shape[-1]), w).view(*x.shape[:-1], w.shape[0])

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
        return _onednn_mm(g2, w.t()).view(x.shape), _onednn_mm(g2.t(), x2.t())


# ---------------------------------------------------------------------------------------------
# Model: GPT with rotary embeddings, QK-norm, ReLU^2 MLP, value embeddings, sliding windows.


def norm(x):
    # RMSNorm without learnable scale: the residual lambdas and the next layer's weights do that job.
    if hasattr(F, "rms_norm"):
        return F.rms_norm(x, (x.size(-1),))
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


class Linear(nn.Module):
    def __init__(self, fan_in, fan_out, zero=False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(fan_out, fan_in))
        bound = 0.0 if zero else 3 ** 0.5 / fan_in ** 0.5  # unit-variance outputs for unit-variance inputs
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x):
        return OneDNNLinear.apply(x, self.weight) if ONEDNN_LINEAR else F.linear(x, self.weight)


def rotary(seq_len, head_dim, base=10000.0):
    freqs = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), freqs)
    return angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]  # (1, T, 1, D/2)


def apply_rotary(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos[:, :x.size(1)].to(x.dtype), sin[:, :x.size(1)].to(x.dtype)
    return torch.cat([x1 * cos + x2 * sin, x2 * cos - x1 * sin], dim=-1)


# Attention kernels, best first. Full-context layers: scaled_dot_product_attention's fused causal
# kernels (torch >= 2.0). Sliding windows: flex_attention (CUDA, torch >= 2.5), which skips the masked
# blocks; else SDPA with an explicit mask. Plain softmax for anything older (Debian's torch 1.13).
try:
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    HAS_FLEX = device.type == "cuda"
except ImportError:
    HAS_FLEX = False
HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def prefer_cudnn_attention(n_head, head_dim, seq_len):
    """On Hopper and later GPUs cuDNN's fused attention ran causal forward + backward 1.7x faster than
    flash and 1.35x faster than flex here (H100, docs/TRAINER.md), so SDPA is limited to it (and the
    math fallback) when it takes this model's shapes. Returns the name of the kernel full layers use."""
    if not HAS_SDPA:
        return "softmax"
    if device.type != "cuda" or torch.cuda.get_device_capability() < (9, 0):
        return "sdpa"
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        q = torch.randn(1, n_head, seq_len, head_dim, device=device, dtype=torch.bfloat16, requires_grad=True)
        with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
            F.scaled_dot_product_attention(q, q, q, is_causal=True).sum().backward()
    except (ImportError, RuntimeError):
        return "sdpa"
    torch.backends.cuda.enable_flash_sdp(False)
    torch.backends.cuda.enable_mem_efficient_sdp(False)
    return "sdpa-cudnn"


def make_attention_masks(windows, seq_len):
    """One mask per distinct window: None for full causal context (SDPA's is_causal), a flex
    BlockMask on CUDA, else a boolean (T, T) matrix."""
    masks = {}
    for w in set(windows):
        if w >= seq_len and HAS_SDPA:
            masks[w] = None
        elif HAS_FLEX:
            def mask_mod(b, h, q, kv, w=w):
                return (q >= kv) & (q - kv < w)
            masks[w] = create_block_mask(mask_mod, None, None, seq_len, seq_len, device=device)
        else:
            i = torch.arange(seq_len, device=device)
            masks[w] = (i[:, None] >= i[None, :]) & (i[:, None] - i[None, :] < w)
    return masks


def attend(q, k, v, mask):  # q, k, v: (B, H, T, D)
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if HAS_FLEX:
        return flex_attention(q, k, v, block_mask=mask, kernel_options=FLEX_OPTIONS or None)
    T = q.size(2)
    mask = mask[:T, :T]
    if HAS_SDPA:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    att = (q @ k.transpose(-2, -1)) * q.size(-1) ** -0.5
    att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    return att @ v


class Attention(nn.Module):
    def __init__(self, dim, head_dim, has_ve):
        super().__init__()
        self.n_head, self.head_dim = dim // head_dim, head_dim
        self.c_q, self.c_k, self.c_v = Linear(dim, dim), Linear(dim, dim), Linear(dim, dim)
        self.c_proj = Linear(dim, dim, zero=True)
        # Value embeddings: a per-token vector added to the values, scaled per head by a gate that
        # reads the first channels of the input. Starts at gate 1 (sigmoid(0) * 2).
        self.ve_gate = Linear(32, self.n_head, zero=True) if has_ve else None

    def forward(self, x, ve, cos, sin, mask):
        B, T, C = x.shape
        q = self.c_q(x).view(B, T, self.n_head, self.head_dim)
        k = self.c_k(x).view(B, T, self.n_head, self.head_dim)
        v = self.c_v(x).view(B, T, self.n_head, self.head_dim)
        if ve is not None:
            gate = 2 * torch.sigmoid(self.ve_gate(x[..., :32]))
            v = v + gate.unsqueeze(-1) * ve.view_as(v).to(v.dtype)
        # QK-norm; the cast keeps q, k in the matmul dtype should autocast run the norm in fp32.
        q, k = norm(apply_rotary(q, cos, sin)).to(v.dtype), norm(apply_rotary(k, cos, sin)).to(v.dtype)
        y = attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.c_fc = Linear(dim, MLP_RATIO * dim)
        self.c_proj = Linear(MLP_RATIO * dim, dim, zero=True)

    def forward(self, x):
        return self.c_proj(F.relu(self.c_fc(x)).square())  # ReLU^2: sparse and cheap, trains well


class SoftcapCrossEntropy(torch.autograd.Function):
    """Per-token cross-entropy of soft-capped logits. It saves only the logits (bf16 on GPU) and their
    log-sum-exp, and the backward recomputes the rest in one pass: left to autograd, a float32 copy of
    the capped logits (8.6 GB per micro-batch on GPU) was written and read back."""

    @staticmethod
    def forward(ctx, logits, targets):
        capped = LOGIT_SOFTCAP * torch.tanh(logits.float() / LOGIT_SOFTCAP)
        lse = torch.logsumexp(capped, dim=-1)
        ctx.save_for_backward(logits, targets, lse)
        return lse - capped.gather(1, targets[:, None]).squeeze(1)

    @staticmethod
    def backward(ctx, grad):
        logits, targets, lse = ctx.saved_tensors
        t = torch.tanh(logits.float() / LOGIT_SOFTCAP)
        probs = torch.exp(LOGIT_SOFTCAP * t - lse[:, None])
        hit = torch.arange(logits.size(1), device=logits.device)[None, :] == targets[:, None]
        return ((probs - hit.float()) * grad[:, None] * (1 - t * t)).to(logits.dtype), None


class Block(nn.Module):
    def __init__(self, dim, head_dim, has_ve):
        super().__init__()
        self.attn = Attention(dim, head_dim, has_ve)
        self.mlp = MLP(dim)

    def forward(self, x, ve, cos, sin, mask):
        x = x + self.attn(norm(x), ve, cos, sin, mask)
        return x + self.mlp(norm(x))


class GPT(nn.Module):
    def __init__(self, vocab_size, depth, dim, head_dim, seq_len):
        super().__init__()
        self.depth, self.dim, self.seq_len = depth, dim, seq_len
        self.windows = [seq_len if WINDOW_PATTERN[i % len(WINDOW_PATTERN)] == "L" or i == depth - 1
                        else max(1, int(SHORT_WINDOW * seq_len)) for i in range(depth)]
        # Value embeddings on every other layer, always including the last one.
        self.ve_layers = [i for i in range(depth) if (depth - 1 - i) % 2 == 0]
        self.wte = nn.Embedding(vocab_size, dim)
        self.value_embeds = nn.ModuleDict({str(i): nn.Embedding(vocab_size, dim) for i in self.ve_layers})
        self.blocks = nn.ModuleList([Block(dim, head_dim, i in self.ve_layers) for i in range(depth)])
        self.lm_head = Linear(dim, vocab_size)
        nn.init.normal_(self.lm_head.weight, std=0.001)  # untied from wte; starts near uniform
        # Per-layer mixing of the residual stream x and the first embedding x0: x <- r*x + s*x0.
        self.resid_lambdas = nn.Parameter(torch.ones(depth))
        self.x0_lambdas = nn.Parameter(torch.full((depth,), 0.1))
        cos, sin = rotary(seq_len, head_dim)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.masks = make_attention_masks(self.windows, seq_len)  # built once, outside torch.compile

    def forward(self, idx, targets=None):
        """Mean training loss with targets; without, the soft-capped logits (what evaluate.py scores)."""
        x = x0 = norm(self.wte(idx)).to(RESIDUAL_DTYPE)
        for i, block in enumerate(self.blocks):
            x = self.resid_lambdas[i] * x + self.x0_lambdas[i] * x0
            ve = self.value_embeds[str(i)](idx) if i in self.ve_layers else None
            x = block(x, ve, self.cos, self.sin, self.masks[self.windows[i]])
        logits = self.lm_head(norm(x))
        if targets is None:
            return LOGIT_SOFTCAP * torch.tanh(logits.float() / LOGIT_SOFTCAP)
        return SoftcapCrossEntropy.apply(logits.view(-1, logits.size(-1)), targets.reshape(-1)).mean()

    def flops_per_token(self, causal=True):
        """Training FLOPs per token: 6 per matmul weight, plus attention scores and mixing (QK^T, AV:
        12 * dim per attended key). Keys are counted as really attended: causal and windowed. With
        causal=False, as nanochat / autoresearch count: every key of a window, no causal halving."""
        matmul = sum(p.numel() for n, p in self.named_parameters() if p.dim() == 2 and "embed" not in n and "wte" not in n)
        T = self.seq_len
        keys = (lambda w: sum(min(t + 1, w) for t in range(T)) / T) if causal else (lambda w: min(w, T))
        return 6 * matmul + sum(12 * self.dim * keys(w) for w in self.windows)


# ---------------------------------------------------------------------------------------------
# Optimizer: Muon for the 2-D matrices in the blocks, AdamW for embeddings, lm_head and scalars.


def orthogonalize(G, steps=5):
    """Newton-Schulz iteration towards the nearest semi-orthogonal matrix (U V^T of G's SVD).
    The quintic's coefficients push all singular values into roughly [0.7, 1.2] in 5 steps, which
    is all Muon needs; bf16 is accurate enough for that."""
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G.bfloat16() if G.is_cuda else G.float()
    tall = X.size(-2) > X.size(-1)
    if tall:
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        A = matmul(X, X.mT)
        X = a * X + matmul(b * A + c * matmul(A, A), X)
    return (X.mT if tall else X).to(G.dtype)


class Muon(torch.optim.Optimizer):
    """Momentum, then orthogonalized updates. Matrices of one shape are stacked and orthogonalized
    together: a handful of batched products per step instead of one set per matrix."""

    def __init__(self, params, lr, momentum, weight_decay):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            by_shape = {}
            for p in group["params"]:
                by_shape.setdefault(p.shape, []).append(p)
            for shape, params in by_shape.items():
                grads = torch.stack([p.grad for p in params])
                state = self.state[params[0]]
                if "momentum" not in state:
                    state["momentum"] = torch.zeros_like(grads)
                buf = state["momentum"]
                buf.lerp_(grads, 1 - group["momentum"])
                update = orthogonalize(grads.lerp_(buf, group["momentum"]))  # Nesterov
                scale = max(1.0, shape[0] / shape[1]) ** 0.5  # same RMS for tall and wide matrices
                for p, u in zip(params, update):
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(u, alpha=-group["lr"] * scale)


def build_optimizers(model):
    scale = (model.dim / 768) ** -0.5
    matrices = [p for p in model.blocks.parameters() if p.dim() == 2]
    embeddings = [model.wte.weight] + [e.weight for e in model.value_embeds.values()]
    scalars = [model.resid_lambdas, model.x0_lambdas]
    groups = [dict(params=embeddings, lr=EMBEDDING_LR * scale),
              dict(params=[model.lm_head.weight], lr=UNEMBEDDING_LR * scale),
              dict(params=scalars, lr=SCALAR_LR)]
    kwargs = dict(betas=(ADAM_BETA1, ADAM_BETA2), eps=1e-10, weight_decay=0.0)
    try:
        adam = torch.optim.AdamW(groups, fused=device.type == "cuda", **kwargs)
    except (TypeError, RuntimeError):  # older torch: no fused AdamW
        adam = torch.optim.AdamW(groups, **kwargs)
    muon = Muon(matrices, lr=MATRIX_LR, momentum=MUON_MOMENTUM, weight_decay=WEIGHT_DECAY)
    optimizers = [adam, muon]
    for opt in optimizers:
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
    return optimizers


def lr_multiplier(progress):
    if progress < WARMUP_FRAC:
        return (progress + 1e-3) / (WARMUP_FRAC + 1e-3)
    if progress <= 1 - WARMDOWN_FRAC:
        return 1.0
    cooldown = (1 - progress) / WARMDOWN_FRAC
    return cooldown + (1 - cooldown) * FINAL_LR_FRAC


# ---------------------------------------------------------------------------------------------
# Setup.


def build_model(config):
    """The model for a config; evaluate.py calls this (then loads the saved weights) to score it."""
    if device.type == "cuda":  # initialized where it trains: no copy of every weight from the CPU
        with torch.device(device):
            return GPT(config["vocab_size"], config["depth"], config["dim"], config["head_dim"], config["seq_len"])
    # torch 1.13 has no device context manager
    return GPT(config["vocab_size"], config["depth"], config["dim"], config["head_dim"], config["seq_len"]).to(device)


def warm_up(model, device_batch, vocab_size):
    """Compile the training step on made-up tokens, before asking for the data.

    Under the worker the clock starts when train.py first asks for the training split (prepare.py),
    so compilation done here is off the clock, and the worker can do it while another run trains.
    One forward and backward compiles both graphs; no optimizer step, so the weights are untouched."""
    batch = torch.randint(0, vocab_size, (device_batch, SEQ_LEN + 1), device=device)
    x, y = batch[:, :-1], batch[:, 1:]  # the loader's views, strides and all: no recompile at step 1
    with autocast:
        loss = model(x, y)
    loss.backward()
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    del batch, x, y, loss
    torch.cuda.empty_cache()  # the activations' memory goes back while this run waits for its turn


def main():
    data = load_data()
    if PROFILE == "gpu":
        depth, head_dim = DEPTH, HEAD_DIM
        dim = -(-DEPTH * ASPECT_RATIO // HEAD_DIM) * HEAD_DIM
        total_batch, device_batch = TOTAL_BATCH_TOKENS, DEVICE_BATCH
    else:
        depth, dim, head_dim = TINY_DEPTH, TINY_MODEL_DIM, TINY_HEAD_DIM
        total_batch, device_batch = TINY_TOTAL_BATCH_TOKENS, TINY_DEVICE_BATCH
    tokens_per_pass = device_batch * SEQ_LEN
    assert total_batch % tokens_per_pass == 0, "TOTAL_BATCH_TOKENS must be a multiple of DEVICE_BATCH * SEQ_LEN"
    grad_accum = total_batch // tokens_per_pass

    t_data = time.time()
    full_attention = prefer_cudnn_attention(dim // head_dim, head_dim, SEQ_LEN)
    config = dict(vocab_size=data.vocab_size, depth=depth, dim=dim, head_dim=head_dim, seq_len=SEQ_LEN)
    model = build_model(config)
    t_model = time.time()
    num_params = sum(p.numel() for p in model.parameters())
    flops_per_token = model.flops_per_token()
    flops_per_token_nanochat = model.flops_per_token(causal=False)
    windows = model.windows
    optimizers = build_optimizers(model)
    if device.type == "cuda":
        model = torch.compile(model, dynamic=False)

    PEAK_FLOPS = {"H100 PCIe": 756e12, "H100": 989.5e12, "H200": 989.5e12, "GH200": 989.5e12, "B200": 2250e12,
                  "A100": 312e12, "L40S": 362e12, "L40": 181e12, "L4": 121e12, "A10": 125e12, "RTX 4090": 165.2e12, "RTX 3090": 71e12}
    gpu_name = torch.cuda.get_device_name() if device.type == "cuda" else ""
    peak_flops = next((v for k, v in PEAK_FLOPS.items() if k in gpu_name), 0.0)

    print(f"device: {device} {gpu_name} | torch {torch.__version__} | profile {PROFILE} | budget {TIME_BUDGET:g}s | seed {SEED}")
    print(f"data: {data.dir} | train tokens {data.meta['train_tokens']:,}")
    print(f"model: depth {depth}, dim {dim}, heads {dim // head_dim}, windows {windows}"
          f" | params {num_params / 1e6:.1f}M | {flops_per_token / 1e6:.1f} MFLOP/token ({flops_per_token_nanochat / 1e6:.1f} as nanochat counts)"
          f" | batch {total_batch} tokens ({grad_accum} x {device_batch} x {SEQ_LEN})"
          f" | attention {full_attention}"
          f"{'' if min(windows) >= SEQ_LEN else ', windows ' + ('flex' if HAS_FLEX else 'sdpa' if HAS_SDPA else 'softmax')}", flush=True)

    # ---------------------------------------------------------------------------------------------
    # Training loop: runs until TIME_BUDGET seconds of (timed) training have passed.

    t_warm = time.time()
    if device.type == "cuda":
        warm_up(model, device_batch, data.vocab_size)
    t_warm = time.time() - t_warm
    t_setup = time.time() - T_START
    setup_parts = (f"imports {T_IMPORTS:.1f}s, data {t_data - T_START - T_IMPORTS:.1f}s, model {t_model - t_data:.1f}s,"
                   f" compile {t_warm:.1f}s, rest {time.time() - t_model - t_warm:.1f}s")
    t_wait = time.time()
    loader = make_loader(data, device_batch, device)  # under the worker: waits here for its turn and the data
    x, y = next(loader)
    t_wait = time.time() - t_wait
    step, train_time, timed_tokens, total_tokens = 0, 0.0, 0, 0
    smooth_loss, last_log = 0.0, 0.0
    explode_at = 3 * math.log(data.vocab_size)  # far above the loss of a uniform guess: diverged

    while True:
        t0 = time.perf_counter()  # monotonic: a step of the system clock (NTP) must not count as training
        progress = min(train_time / TIME_BUDGET, 1.0)
        for _ in range(grad_accum):
            with autocast:
                loss = model(x, y)
            (loss / grad_accum).backward()
            x, y = next(loader)  # the next batch is built while the GPU still works on this one
        lrm = lr_multiplier(progress)
        for opt in optimizers:
            for g in opt.param_groups:
                g["lr"] = g["initial_lr"] * lrm
            opt.step()
        model.zero_grad(set_to_none=True)
        loss_f = loss.item()  # also waits for the GPU, so the step time below is real
        if not math.isfinite(loss_f) or loss_f > explode_at:  # fail fast: no point burning the budget
            print(f"FAIL: training diverged at step {step} (loss {loss_f}); lower the learning rates or undo the last change", flush=True)
            sys.exit(1)
        dt = time.perf_counter() - t0
        if step == 0:
            first_step = dt  # mostly torch.compile
        step += 1
        total_tokens += total_batch
        if step > UNTIMED_STEPS:
            train_time += dt
            timed_tokens += total_batch
        if step == UNTIMED_STEPS:
            # Python's GC scans every live object now and then: tens of ms of stalls on a big heap.
            # Everything allocated so far lives for the whole run, so freeze it and collect by hand.
            gc.collect()
            gc.freeze()
            gc.disable()
        elif step % 1000 == 0:
            gc.collect()
        smooth_loss = 0.9 * smooth_loss + 0.1 * loss_f
        done = step > UNTIMED_STEPS and train_time + dt / 2 >= TIME_BUDGET  # stop at the step ending nearest the budget
        now = time.time()
        if now - last_log >= LOG_EVERY or done or step == 1:
            last_log = now
            tok_s = timed_tokens / train_time if train_time > 0 else total_batch / dt
            mfu = 100 * tok_s * flops_per_token / peak_flops if peak_flops else 0.0
            print(f"step {step:05d} | {100 * min(train_time / TIME_BUDGET, 1):.1f}% | loss {smooth_loss / (1 - 0.9 ** step):.4f}"
                  f" | lr {lrm:.2f} | dt {dt * 1000:.0f}ms | tok/s {tok_s:,.0f} | mfu {mfu:.1f}%"
                  f" | remaining {max(0.0, TIME_BUDGET - train_time):.0f}s", flush=True)
        if done:
            break

    # ---------------------------------------------------------------------------------------------
    # Checkpoint and summary. val_bpb is not ours to print: evaluate.py measures it from the checkpoint.

    gc.enable()
    tok_s = timed_tokens / train_time if train_time > 0 else 0.0
    mfu = 100 * tok_s * flops_per_token / peak_flops if peak_flops else 0.0
    peak_vram = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else 0.0
    print(f"overhead: setup {t_setup:.1f}s ({setup_parts}) | waited for data {t_wait:.1f}s | first step {first_step:.1f}s", flush=True)
    print("---")
    print(f"training_seconds: {train_time:.1f}")
    print(f"total_seconds:    {time.time() - T_START:.1f}")
    print(f"peak_vram_mb:     {peak_vram:.1f}")
    print(f"mfu_percent:      {mfu:.2f}")
    print(f"total_tokens_M:   {total_tokens / 1e6:.1f}")
    print(f"num_steps:        {step}")
    print(f"num_params_M:     {num_params / 1e6:.1f}")
    print(f"depth:            {depth}", flush=True)
    save_model(model, config)  # the last act: under the worker the run ends when the weights are saved


if __name__ == "__main__":
    main()
