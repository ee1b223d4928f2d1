"""train.py end to end on CPU: the summary, the budget, the checkpoint it hands to the evaluator,
failing fast. train.py does not measure val_bpb; evaluate.py does (test_evaluate.py)."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import torch

from conftest import HANG_SECONDS, TRAINER, make_run_dir, parse_summary, run_env, run_train

SUMMARY_KEYS = ["training_seconds", "total_seconds", "peak_vram_mb", "mfu_percent",
                "total_tokens_M", "num_steps", "num_params_M", "depth"]
CONFIG_KEYS = {"vocab_size", "depth", "dim", "head_dim", "seq_len"}


def import_train(run_dir, name):
    """train.py of a run folder as a module, the way model_server.py loads it (not __main__)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(run_dir, "train.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_run_prints_a_parseable_summary_without_val_bpb(cpu_run):
    lines = cpu_run.stdout.splitlines()
    block = lines[max(i for i, l in enumerate(lines) if l == "---") + 1:]
    assert [l.split(":")[0] for l in block[:-1]] == SUMMARY_KEYS
    assert block[-1] == "autoresearch: weights saved"  # saving is the last act: the worker ends the run there
    summary = parse_summary(cpu_run.stdout)
    assert summary["num_steps"] >= 2  # the untimed first step and at least one timed one, whatever the load
    assert summary["peak_vram_mb"] == 0.0
    assert "val_bpb" not in cpu_run.stdout  # measured by evaluate.py, never by training


def test_training_time_respects_the_budget_from_the_environment(cpu_run):
    """Training stops at the first step whose middle passes the 5-second budget: before that step
    it was short of the budget, after it half the step is past it. Stated with the last step's own
    duration (`dt` on its progress line), so it holds however slow a loaded machine made the steps
    (at load average 30 one timed step took 11.5 s)."""
    import re
    trained = parse_summary(cpu_run.stdout)["training_seconds"]
    last_step = [l for l in cpu_run.stdout.splitlines() if l.startswith("step ")][-1]
    dt = float(re.search(r"\| dt (\d+)ms \|", last_step).group(1)) / 1000
    assert trained - dt < 5 + 0.05, (trained, last_step)  # short of the budget before the last step
    assert trained + dt / 2 >= 5 - 0.05, (trained, last_step)  # its middle reached it


def test_progress_lines_are_machine_parseable(cpu_run):
    progress = [l for l in cpu_run.stdout.splitlines() if l.startswith("step ")]
    assert progress
    import re
    pattern = re.compile(r"^step \d{5} \| [\d.]+% \| loss [\d.]+ \|.* tok/s [\d,]+ \| mfu [\d.]+% \| remaining \d+s$")
    assert all(pattern.match(l) for l in progress), progress[:3]


def test_training_saves_its_weights_and_config_in_the_run_folder(cpu_run, trained_run_dir, small_data):
    import prepare
    checkpoint = trained_run_dir / prepare.CHECKPOINT
    assert prepare.CHECKPOINT == "model.safetensors" and checkpoint.is_file()
    state, config = prepare.load_checkpoint(checkpoint)
    summary = parse_summary(cpu_run.stdout)
    assert set(config) == CONFIG_KEYS
    assert config["vocab_size"] == small_data.vocab_size and config["seq_len"] == prepare.SEQ_LEN
    assert config["depth"] == summary["depth"]
    assert round(sum(t.numel() for t in state.values()) / 1e6, 1) == summary["num_params_M"]


def test_importing_train_defines_build_model_and_does_not_train(tmp_path):
    """What model_server.py relies on: `import train` only defines things. With no data set at all,
    a run would fail at once; the import succeeds and writes nothing."""
    run_dir = make_run_dir(tmp_path / "run")
    proc = subprocess.run([sys.executable, "-c", "import train; print('build_model', callable(train.build_model))"],
                          cwd=run_dir, env=run_env(tmp_path / "no-data-here", AUTORESEARCH_TIME_BUDGET="60"),
                          capture_output=True, text=True, timeout=HANG_SECONDS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == ["build_model True"]
    assert sorted(p.name for p in run_dir.iterdir()) == ["prepare.py", "train.py"]


def test_build_model_and_the_checkpoint_reproduce_the_trained_models_logits_exactly(small_data_dir, small_data, tmp_path):
    """The evaluator's view of the model (build_model(config) + the saved weights, in a fresh process)
    is the model training ended with: the same logits, bit for bit."""
    import prepare
    run_dir = make_run_dir(tmp_path / "run")
    rng = np.random.default_rng(0)
    np.save(run_dir / "idx.npy", rng.integers(0, small_data.vocab_size, size=(3, prepare.SEQ_LEN)))
    # Trains with train.py's own main(); its save_model is wrapped to also record the logits of the
    # model in memory, right after the checkpoint was written.
    (run_dir / "record_logits.py").write_text(
        "import numpy as np, torch, train\n"
        "save_model = train.save_model\n"
        "def save_and_record(model, config, *args, **kwargs):\n"
        "    save_model(model, config, *args, **kwargs)\n"
        "    with torch.no_grad():\n"
        "        np.save('trained_logits.npy', model(torch.from_numpy(np.load('idx.npy'))).float().numpy())\n"
        "train.save_model = save_and_record\n"
        "train.main()\n")
    proc = run_train(run_dir / "record_logits.py", small_data_dir, budget=1)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trained = np.load(run_dir / "trained_logits.npy")

    train = import_train(run_dir, "train_for_reload_test")
    state, config = prepare.load_checkpoint(run_dir / prepare.CHECKPOINT)
    model = train.build_model(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not missing and not unexpected
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(np.load(run_dir / "idx.npy")))
    assert logits.shape == (3, prepare.SEQ_LEN, small_data.vocab_size)
    assert np.array_equal(logits.float().numpy(), trained)


def test_forward_with_targets_returns_the_mean_loss_of_the_logits_without(tmp_path, small_data):
    """forward(idx) is what evaluate.py scores; forward(idx, targets) what training minimizes: the same model."""
    import prepare
    train = import_train(make_run_dir(tmp_path / "run"), "train_for_forward_test")
    config = dict(vocab_size=small_data.vocab_size, depth=1, dim=64, head_dim=32, seq_len=prepare.SEQ_LEN)
    torch.manual_seed(0)
    model = train.build_model(config)
    for p in model.parameters():  # away from the initialization, where lm_head is nearly zero
        p.data.add_(0.1 * torch.randn_like(p))
    idx = torch.randint(0, config["vocab_size"], (2, prepare.SEQ_LEN))
    targets = torch.randint(0, config["vocab_size"], (2, prepare.SEQ_LEN))
    with torch.no_grad():
        logits = model(idx)
        loss = model(idx, targets)
    assert logits.shape == (2, prepare.SEQ_LEN, config["vocab_size"])
    assert logits.abs().max() < train.LOGIT_SOFTCAP  # soft-capped
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, config["vocab_size"]), targets.reshape(-1))
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)


def test_nan_loss_exits_non_zero_with_a_message_and_no_checkpoint(small_data_dir, tmp_path):
    source = (TRAINER / "train.py").read_text()
    broken = source.replace("LOGIT_SOFTCAP = 15.0", 'LOGIT_SOFTCAP = float("nan")', 1)
    assert broken != source
    run_dir = make_run_dir(tmp_path / "run", broken)
    proc = run_train(run_dir / "train.py", small_data_dir, budget=5)
    assert proc.returncode != 0
    assert "diverged" in proc.stdout
    assert "---" not in proc.stdout.splitlines()  # no summary
    assert not (run_dir / "model.safetensors").exists()


def test_softcap_cross_entropy_matches_autograd_through_the_plain_loss():
    """SoftcapCrossEntropy's hand-written backward against autograd of the same loss, in float64."""
    import ast
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
