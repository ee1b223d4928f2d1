"""climbmix downloads against a local server in the public layout: resume, corrupt shards, full disk.

Reading parquet needs pyarrow. Where it is missing (Debian 12 has no python3-pyarrow), the shards are
stand-ins that only the download path can handle, and the last test — a whole `prepare.py --source
climbmix` on real parquet — is skipped with that reason.
"""

import importlib.util
import os
import subprocess
import sys

import pytest

import prepare
from conftest import HANG_SECONDS, TRAINER, key_values
from shard_server import ShardServer, fake_shard

VAL = f"shard_{prepare.CLIMBMIX_VAL_SHARD:05d}.parquet"


def shards(folder, n, make=fake_shard):
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"shard_{i:05d}.parquet" for i in range(n)] + [VAL]
    for i, name in enumerate(names):
        (folder / name).write_bytes(make(i))
    return names


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A shard server over a fresh folder, with prepare pointed at it and at an empty cache."""
    made = []

    def start(n=2, cut=None, corrupt=None):
        names = shards(tmp_path / "remote", n)
        server = ShardServer(tmp_path / "remote", cut, corrupt).start()
        made.append(server)
        monkeypatch.setattr(prepare, "CLIMBMIX_URL", server.url)
        monkeypatch.setattr(prepare, "CACHE_DIR", tmp_path / "cache")
        monkeypatch.setenv("AUTORESEARCH_DOWNLOAD_RETRY_BASE", "0.01")
        return server, names

    yield start
    for s in made:
        s.stop()


def test_the_url_comes_from_the_environment(tmp_path):
    env = dict(os.environ, AUTORESEARCH_CLIMBMIX_URL="http://127.0.0.1:9/mirror/")
    out = subprocess.run([sys.executable, "-c", "import prepare; print(prepare.CLIMBMIX_URL)"], cwd=TRAINER, env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "http://127.0.0.1:9/mirror"


def test_downloads_the_train_shards_and_the_pinned_validation_shard(served, tmp_path):
    server, names = served(n=2)
    train, val = prepare.climbmix_shards(2)
    assert [p.name for p in train] == names[:2] and val.name == VAL
    for p in [*train, val]:
        assert p.read_bytes() == (tmp_path / "remote" / p.name).read_bytes()
        assert not p.with_suffix(".parquet.part").exists()
    again = len(server.requests)
    prepare.climbmix_shards(2)
    assert len(server.requests) == again, "shards already here are not fetched again"


def test_an_interrupted_download_resumes_where_it_stopped(served, tmp_path):
    server, names = served(n=1, cut={"shard_00000.parquet": 20_000})
    train, _ = prepare.climbmix_shards(1)
    assert train[0].read_bytes() == (tmp_path / "remote" / "shard_00000.parquet").read_bytes()
    asked = [r for n, r in server.requests if n == "shard_00000.parquet"]
    assert asked == [None, "bytes=20000-"], "the second request asks only for the rest"


def test_a_corrupt_shard_is_fetched_again(served, tmp_path):
    server, names = served(n=1, corrupt={"shard_00000.parquet": 1})
    train, _ = prepare.climbmix_shards(1)
    assert train[0].read_bytes() == (tmp_path / "remote" / "shard_00000.parquet").read_bytes()
    assert server.names_requested().count("shard_00000.parquet") == 2


def test_a_shard_corrupt_every_time_fails_with_a_clear_message(served):
    served(n=1, corrupt={"shard_00000.parquet": 5})
    with pytest.raises(prepare.DataError, match="arrived corrupt twice"):
        prepare.climbmix_shards(1)
    assert not list((prepare.CACHE_DIR / "sources").rglob("shard_00000.parquet")), "no corrupt shard is kept"


def test_a_missing_shard_is_not_retried_and_names_the_url(served, tmp_path):
    server, names = served(n=1)
    (tmp_path / "remote" / VAL).unlink()
    with pytest.raises(prepare.DataError, match="AUTORESEARCH_CLIMBMIX_URL"):
        prepare.climbmix_shards(1)
    assert server.names_requested().count(VAL) == 1


def test_a_full_disk_fails_at_once_and_says_what_to_do(tmp_path):
    # The disk is "full" for real: a file-size limit (RLIMIT_FSIZE) refuses the write, as ENOSPC
    # would (EFBIG; mounting a small tmpfs needs root).
    shards(tmp_path / "remote", 1)
    server = ShardServer(tmp_path / "remote").start()
    try:
        code = ("import resource, signal, sys, prepare\n"
                "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
                "resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))\n"
                "try:\n    prepare.climbmix_shards(1)\nexcept prepare.DataError as e:\n    sys.exit(f'error: {e}')\n")
        env = dict(os.environ, AUTORESEARCH_CLIMBMIX_URL=server.url, AUTORESEARCH_CACHE=str(tmp_path / "cache"))
        proc = subprocess.run([sys.executable, "-c", code], cwd=TRAINER, env=env, capture_output=True, text=True, timeout=HANG_SECONDS)
    finally:
        server.stop()
    assert proc.returncode == 1
    assert "ulimit -f" in proc.stderr or "disk holding" in proc.stderr and "AUTORESEARCH_CACHE" in proc.stderr, proc.stderr
    assert "retrying" not in proc.stderr, "a full disk is not retried"


def test_a_disk_that_fills_up_fails_at_once_with_what_to_do(served, tmp_path):
    # A real small disk: a 64 KiB tmpfs (two 50 kB shards do not fit), where mounting is allowed.
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the file-size limit test covers a full disk")
    try:
        server, _ = served(n=1)
        prepare.CACHE_DIR = disk  # the fixture's monkeypatch restores it
        with pytest.raises(prepare.DataError, match=r"the disk holding .* is full: free space there .* or set AUTORESEARCH_CACHE to a larger disk"):
            prepare.climbmix_shards(1)
        assert len(server.requests) <= 2, "nothing is retried"
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="needs pyarrow (not installable on Debian 12 without pip): reads real parquet shards")
def test_prepare_climbmix_end_to_end_on_real_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    words = "the quick brown fox jumps over the lazy dog while seven wizards quietly hex".split()

    def real_shard(i):
        docs = [" ".join(words[(i + j + k) % len(words)] for k in range(300)) for j in range(200)]
        path = tmp_path / f"tmp{i}.parquet"
        pq.write_table(pa.table({"text": docs}), path)
        return path.read_bytes()

    shards(tmp_path / "remote", 2, make=real_shard)
    server = ShardServer(tmp_path / "remote", cut={"shard_00001.parquet": 1000}).start()
    try:
        env = dict(os.environ, AUTORESEARCH_CLIMBMIX_URL=server.url, AUTORESEARCH_CACHE=str(tmp_path / "cache"),
                   AUTORESEARCH_PROFILE="cpu-tiny", AUTORESEARCH_DOWNLOAD_RETRY_BASE="0.01")
        proc = subprocess.run([sys.executable, str(TRAINER / "prepare.py"), "--source", "climbmix", "--num-shards", "2", "--vocab-size", "300"],
                              env=env, capture_output=True, text=True, timeout=HANG_SECONDS)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = key_values(proc.stdout)
    assert len(out["fingerprint"]) == 64 and int(out["val_tokens"]) > 0
