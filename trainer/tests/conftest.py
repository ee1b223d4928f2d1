"""Shared, expensive fixtures: one prepared cache per test session, one CPU training run.

A run happens the way the worker does it: in a run folder holding train.py and prepare.py, which is
also the working directory, so the checkpoint (prepare.CHECKPOINT) lands there. evaluate.py then
measures that folder."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

TRAINER = Path(__file__).resolve().parents[1]
SMALL_VOCAB = 512  # fast to train; the default 8192 is exercised once in test_prepare.py
# Subprocess time limits guard against hangs only, never against slowness: a loaded machine (two CPU
# burners beside `npm test` on 2 cores) must not turn a test red.
HANG_SECONDS = 600

# prepare.py reads its settings when imported, so they are fixed before any test imports it.
_CACHE = Path(tempfile.mkdtemp(prefix="autoresearch-test-"))
os.environ["AUTORESEARCH_CACHE"] = str(_CACHE)
os.environ["AUTORESEARCH_PROFILE"] = "cpu-tiny"
os.environ.pop("AUTORESEARCH_DATA", None)
sys.path.insert(0, str(TRAINER))


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE, ignore_errors=True)


def run_prepare(*args, cache=_CACHE, check=True):
    env = dict(os.environ, AUTORESEARCH_CACHE=str(cache), AUTORESEARCH_PROFILE="cpu-tiny")
    proc = subprocess.run([sys.executable, str(TRAINER / "prepare.py"), *args], env=env,
                          capture_output=True, text=True, timeout=HANG_SECONDS)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def key_values(text):
    return dict(re.findall(r"^(\w+):\s+(\S+)\s*$", text, flags=re.M))


def make_run_dir(folder, train_source=None):
    """A run folder: train.py (the trainer's own, or the given source) and prepare.py."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text((TRAINER / "train.py").read_text() if train_source is None else train_source)
    os.symlink(TRAINER / "prepare.py", folder / "prepare.py")
    return folder


def run_env(data_dir, **extra):
    return dict(os.environ, AUTORESEARCH_CACHE=str(_CACHE), AUTORESEARCH_DATA=str(data_dir),
                AUTORESEARCH_PROFILE="cpu-tiny", PYTHONUNBUFFERED="1", **extra)


def run_train(script, data_dir, budget, seed=42, timeout=HANG_SECONDS):
    """Runs a training script in its own folder (the run folder), as the worker does."""
    env = run_env(data_dir, AUTORESEARCH_TIME_BUDGET=str(budget), AUTORESEARCH_SEED=str(seed))
    return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=Path(script).parent)


def run_evaluate(run_dir, data_dir, seed=1, timeout=HANG_SECONDS):
    """`python -I -B evaluate.py --run-dir DIR --seed N`: (process, the `evaluation:` JSON)."""
    proc = subprocess.run([sys.executable, "-I", "-B", str(TRAINER / "evaluate.py"), "--run-dir", str(run_dir),
                           "--seed", str(seed)], env=run_env(data_dir), capture_output=True, text=True, timeout=timeout)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("evaluation: ")]
    assert len(lines) == 1, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc, json.loads(lines[0][len("evaluation: "):])


def parse_summary(output):
    """The block after the last `---` line, as floats."""
    lines = output.splitlines()
    start = max(i for i, line in enumerate(lines) if line.strip() == "---")
    return {k: float(v) for k, v in key_values("\n".join(lines[start + 1:])).items()}


@pytest.fixture(scope="session")
def cache_dir():
    return _CACHE


@pytest.fixture(scope="session")
def small_data_dir():
    """The embedded corpus prepared with a small vocabulary."""
    out = run_prepare("--source", "embedded", "--vocab-size", str(SMALL_VOCAB))
    return Path(key_values(out.stdout)["data_dir"])


@pytest.fixture(scope="session")
def small_data(small_data_dir):
    import prepare
    return prepare.load_data(small_data_dir)


@pytest.fixture(scope="session")
def cpu_run_dir(tmp_path_factory):
    """The run folder of cpu_run: train.py, prepare.py and, once it ran, the checkpoint."""
    return make_run_dir(tmp_path_factory.mktemp("cpu-run"))


@pytest.fixture(scope="session")
def cpu_run(small_data_dir, cpu_run_dir):
    """One real training run of train.py on CPU with a 5-second budget, in cpu_run_dir."""
    proc = run_train(cpu_run_dir / "train.py", small_data_dir, budget=5)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def trained_run_dir(cpu_run, cpu_run_dir):
    """cpu_run_dir after training: it holds the checkpoint evaluate.py measures."""
    return cpu_run_dir
