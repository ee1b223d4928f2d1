"""The two scorers of trainer/evaluate.py on one set of logits: TorchScorer on the device (the GPU
where there is one, bfloat16 logits read from a buffer of int16 as the gpu profile has them; float32
on a CPU) against a float64 reference of the same logits, and NumpyScorer (the cpu-tiny profile's)
against TorchScorer. Run from the repository root: python3 bench/evaluate/gpu-scorer-check.py"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, "trainer")
os.environ.setdefault("AUTORESEARCH_PROFILE", "gpu")
import evaluate  # noqa: E402

scorer = evaluate.TorchScorer()
print("device", scorer.device, "dtype", scorer.dtype)
n, vocab = 4, 8192
rng = np.random.default_rng(0)
bf = torch.from_numpy(rng.normal(0, 3, size=(n, evaluate.SEQ_LEN, vocab)).astype(np.float32)).to(torch.bfloat16)
raw = (bf.view(torch.int16) if scorer.dtype == "bfloat16" else bf.float()).numpy().reshape(-1)
y = rng.integers(0, vocab, size=(n, evaluate.SEQ_LEN))
ours = scorer.losses(scorer.logits(raw, n, vocab), y)
exact = -torch.log_softmax(bf.double(), -1).gather(-1, torch.from_numpy(y)[..., None])[..., 0].numpy()
npy = evaluate.NumpyScorer().losses(bf.float().numpy(), y)
print("torch on the device against float64: largest difference", float(np.abs(ours - exact).max()))
print("numpy against torch on the device: largest difference", float(np.abs(npy - ours).max()))
assert np.abs(ours - exact).max() < 1e-3 and np.abs(npy - ours).max() < 1e-3
print("ok")
