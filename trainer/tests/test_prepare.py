"""prepare.py: preparing, the fingerprint and the --check contract."""

import pytest

from conftest import SMALL_VOCAB, key_values, run_prepare


def test_prepare_prints_the_contract_lines(small_data_dir):
    out = key_values(run_prepare("--check", "--vocab-size", str(SMALL_VOCAB)).stdout)
    for key in ("data_dir", "tokenizer", "vocab_size", "train_tokens", "val_tokens", "profile", "fingerprint"):
        assert key in out
    assert out["vocab_size"] == str(SMALL_VOCAB)
    assert int(out["train_tokens"]) > 1_000_000 and int(out["val_tokens"]) > 50_000
    assert len(out["fingerprint"]) == 64


def test_check_prints_the_same_fingerprint_twice(small_data_dir):
    first = key_values(run_prepare("--check", "--vocab-size", str(SMALL_VOCAB)).stdout)["fingerprint"]
    second = key_values(run_prepare("--check", "--vocab-size", str(SMALL_VOCAB)).stdout)["fingerprint"]
    assert first == second


def test_default_vocab_prepares_fast_and_has_its_own_fingerprint(small_data_dir):
    out = key_values(run_prepare("--source", "embedded").stdout)
    assert out["vocab_size"] == "8192"
    small = key_values(run_prepare("--check", "--vocab-size", str(SMALL_VOCAB)).stdout)
    assert out["fingerprint"] != small["fingerprint"]
    assert out["data_dir"] != small["data_dir"]


def test_a_given_tokenizer_reproduces_the_fingerprint_of_its_data(small_data_dir, tmp_path):
    tokenizer = key_values(run_prepare("--check", "--vocab-size", str(SMALL_VOCAB)).stdout)["tokenizer"]
    original = key_values(run_prepare("--check", "--vocab-size", str(SMALL_VOCAB)).stdout)["fingerprint"]
    # Another worker with an empty cache, handed the coordinator's tokenizer file.
    other = key_values(run_prepare("--tokenizer", tokenizer, cache=tmp_path).stdout)
    assert other["fingerprint"] == original
    assert run_prepare("--print-tokenizer-path", "--tokenizer", tokenizer, cache=tmp_path).stdout.strip().endswith("tokenizer.model")


def test_check_fails_clearly_when_nothing_is_prepared(tmp_path):
    proc = run_prepare("--check", cache=tmp_path, check=False)
    assert proc.returncode == 1
    assert "not prepared" in proc.stderr


def test_unknown_source_is_a_clear_error(tmp_path):
    proc = run_prepare("--source", "nowhere", cache=tmp_path, check=False)
    assert proc.returncode == 1
    assert "--source" in proc.stderr


def test_dir_source_reads_txt_and_jsonl(tmp_path):
    import json
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = "The quick brown fox jumps over the lazy dog. " * 40
    for i in range(60):
        (corpus / f"doc{i:02d}.txt").write_text(f"{i} {text}")
    with open(corpus / "more.jsonl", "w") as f:
        for i in range(60):
            f.write(json.dumps({"text": f"line {i}: {text}"}) + "\n")
    out = key_values(run_prepare("--source", f"dir:{corpus}", "--vocab-size", "300", cache=tmp_path / "cache").stdout)
    assert int(out["train_tokens"]) > 0 and int(out["val_tokens"]) > 0
    assert "/data/dir-corpus-" in out["data_dir"]


def test_validation_split_is_pinned_by_document_name():
    import prepare
    names = [f"datasets-sotu/{year}_x.txt" for year in range(1790, 2000)]
    first = [n for n in names if prepare.is_val(n)]
    assert first == [n for n in names if prepare.is_val(n)]
    assert 0.03 < len(first) / len(names) < 0.2


def test_tokenizer_training_does_not_depend_on_the_core_count(monkeypatch):
    import os
    import prepare
    source = prepare.Source("embedded")
    monkeypatch.setattr(prepare, "TOKENIZER_TRAIN_CHARS", 1_000_000)  # quicker, still shows the effect
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    one = prepare.train_tokenizer(source, 512)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert prepare.train_tokenizer(source, 512) == one


def test_download_replaces_a_stale_partial_file(tmp_path):
    import functools
    import http.server
    import threading
    import prepare
    served = tmp_path / "served"
    served.mkdir()
    (served / "shard.parquet").write_bytes(b"0123456789" * 1000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dest = tmp_path / "shard.parquet"
        (tmp_path / "shard.parquet.part").write_bytes(b"junk")  # a server without ranges resends all
        prepare.download(f"http://127.0.0.1:{server.server_port}/shard.parquet", dest)
        assert dest.read_bytes() == (served / "shard.parquet").read_bytes()
    finally:
        server.shutdown()


def test_a_data_set_another_process_finished_first_is_kept(tmp_path, monkeypatch):
    # Two preparers of one data set at once (test runs share a cache): the loser must neither fail
    # nor delete the winner's folder under its readers.
    import prepare
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(40):
        (corpus / f"doc{i:02d}.txt").write_text(f"{i} " + "The quick brown fox jumps over the lazy dog. " * 40)
    monkeypatch.setattr(prepare, "CACHE_DIR", tmp_path / "cache")
    source = prepare.Source(f"dir:{corpus}")
    final = prepare.prepare(source, 300)
    winner = final.with_name("winner")
    final.rename(winner)
    (winner / "marker").write_text("first to finish")
    write_split = prepare._write_split

    def slow_write_split(sp, docs, folder, split, cap=None):
        if split == "train" and not final.exists():
            winner.rename(final)  # the other process finishes while this one tokenizes
        return write_split(sp, docs, folder, split, cap)

    monkeypatch.setattr(prepare, "_write_split", slow_write_split)
    assert prepare.prepare(source, 300) == final
    assert (final / "marker").read_text() == "first to finish"
    assert [p.name for p in final.parent.iterdir()] == [final.name], "no temporary folder left behind"


def test_a_training_sandbox_with_the_training_files_only_trains_but_cannot_read_validation(small_data_dir, tmp_path):
    """What a training run sees: no val.bin, no val_docs.npy. Loading and the training loader work;
    asking for the validation split is a clear DataError that points at the evaluator."""
    import shutil
    import prepare
    sandbox = tmp_path / "data"
    sandbox.mkdir()
    for name in ("train.bin", "train_docs.npy", "tokenizer.model", "token_bytes.npy", "meta.json"):
        shutil.copy(small_data_dir / name, sandbox / name)
    data = prepare.load_data(sandbox)
    x, y = next(prepare.make_loader(data, 2, "cpu", seq_len=32, seed=1))
    assert x.shape == y.shape == (2, 32)
    with pytest.raises(prepare.DataError, match="evaluator"):
        data.tokens("val")
