"""train.py end to end on CPU: the summary, the budget, failing fast."""

import math
import os

from conftest import TRAINER, parse_summary, run_train

SUMMARY_KEYS = ["val_bpb", "training_seconds", "total_seconds", "peak_vram_mb", "mfu_percent",
                "total_tokens_M", "num_steps", "num_params_M", "depth"]


def test_cpu_run_prints_a_parseable_summary_with_finite_val_bpb(cpu_run):
    lines = cpu_run.stdout.splitlines()
    block = lines[max(i for i, l in enumerate(lines) if l == "---") + 1:]
    assert [l.split(":")[0] for l in block] == SUMMARY_KEYS
    summary = parse_summary(cpu_run.stdout)
    assert math.isfinite(summary["val_bpb"]) and 0 < summary["val_bpb"] < 10
    assert summary["num_steps"] >= 5
    assert summary["peak_vram_mb"] == 0.0


def test_training_time_respects_the_budget_from_the_environment(cpu_run):
    summary = parse_summary(cpu_run.stdout)
    assert abs(summary["training_seconds"] - 5) <= 0.5


def test_progress_lines_are_machine_parseable(cpu_run):
    progress = [l for l in cpu_run.stdout.splitlines() if l.startswith("step ")]
    assert progress
    import re
    pattern = re.compile(r"^step \d{5} \| [\d.]+% \| loss [\d.]+ \|.* tok/s [\d,]+ \| mfu [\d.]+% \| remaining \d+s$")
    assert all(pattern.match(l) for l in progress), progress[:3]


def test_nan_loss_exits_non_zero_with_a_message(small_data_dir, tmp_path):
    source = (TRAINER / "train.py").read_text()
    broken = source.replace("LOGIT_SOFTCAP = 15.0", 'LOGIT_SOFTCAP = float("nan")', 1)
    assert broken != source
    (tmp_path / "train.py").write_text(broken)
    os.symlink(TRAINER / "prepare.py", tmp_path / "prepare.py")
    proc = run_train(tmp_path / "train.py", small_data_dir, budget=5)
    assert proc.returncode != 0
    assert "diverged" in proc.stdout
    assert "val_bpb:" not in proc.stdout


def test_softcap_cross_entropy_matches_autograd_through_the_plain_loss():
    """SoftcapCrossEntropy's hand-written backward against autograd of the same loss, in float64."""
    import ast
    import torch
    import torch.nn.functional as F
    source = (TRAINER / "train.py").read_text()
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "SoftcapCrossEntropy")
    cap = next(n.value.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "LOGIT_SOFTCAP")
    scope = {"torch": torch, "LOGIT_SOFTCAP": cap}
    exec(compile(ast.Module(body=[cls], type_ignores=[]), "train.py", "exec"), scope)
    torch.manual_seed(0)
    logits = (torch.randn(64, 300, dtype=torch.float64) * 3 * cap).requires_grad_(True)  # well into the cap
    targets = torch.randint(0, 300, (64,))
    weights = torch.randn(64, dtype=torch.float64)
    mine = scope["SoftcapCrossEntropy"].apply(logits, targets)
    (grad_mine,) = torch.autograd.grad((mine * weights).sum(), logits)
    plain = F.cross_entropy(cap * torch.tanh(logits / cap), targets, reduction="none")
    (grad_plain,) = torch.autograd.grad((plain * weights).sum(), logits)
    assert mine.shape == (64,)
    assert torch.allclose(mine.double(), plain, atol=1e-4)  # the forward runs in float32, as on the GPU
    assert ((grad_mine - grad_plain).norm() / grad_plain.norm()).item() < 1e-5
