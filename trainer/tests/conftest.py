"""Shared, expensive fixtures: one prepared cache per test session, one CPU training run."""

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
                          capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def key_values(text):
    return dict(re.findall(r"^(\w+):\s+(\S+)\s*$", text, flags=re.M))


def run_train(script, data_dir, budget, seed=42, timeout=120):
    env = dict(os.environ, AUTORESEARCH_CACHE=str(_CACHE), AUTORESEARCH_DATA=str(data_dir),
               AUTORESEARCH_PROFILE="cpu-tiny", AUTORESEARCH_TIME_BUDGET=str(budget),
               AUTORESEARCH_SEED=str(seed), PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=timeout)


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
def cpu_run(small_data_dir):
    """One real training run of train.py on CPU with a 5-second budget."""
    proc = run_train(TRAINER / "train.py", small_data_dir, budget=5)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc
