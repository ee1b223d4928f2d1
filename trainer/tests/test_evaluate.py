"""evaluate.py, the trusted metric: val_bpb of a run folder's checkpoint, computed from the logits
that the candidate's model returns for validation inputs, its causality probe, its failures, and
the checkpoint format (prepare.save_model / load_checkpoint) it reads.

Candidates are small train.py files written here: build_model(config) returns a module whose
behaviour is known, and its checkpoint is written with prepare.save_model as training would."""

import importlib.util
import json
import math
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import make_run_dir, run_evaluate

CANDIDATE_HEADER = """\
import torch
import torch.nn as nn
import torch.nn.functional as F

from prepare import save_model
"""


def make_candidate(folder, body, config):
    """A run folder whose train.py defines build_model (in `body`), with a checkpoint of
    build_model(config) written by prepare.save_model."""
    import prepare
    run_dir = make_run_dir(folder, CANDIDATE_HEADER + textwrap.dedent(body))
    spec = importlib.util.spec_from_file_location(f"candidate_{folder.name}", run_dir / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    prepare.save_model(train.build_model(config), config, path=run_dir / prepare.CHECKPOINT)
    return run_dir


def config_of(data):
    import prepare
    return {"vocab_size": data.vocab_size, "seq_len": prepare.SEQ_LEN}


def uniform_bpb(data):
    """What a uniform model scores on the pinned rows: log2(V) bits per counted target, over their bytes."""
    nbytes = data.token_bytes[validation_rows(data)[:, 1:]]
    return math.log2(data.vocab_size) * int((nbytes > 0).sum()) / int(nbytes.sum())


def flooded_evaluation(body, data_dir, data, tmp_path):
    """Evaluates `body` once quiet, then with `flood` in its config: (process, result, how far the
    evaluator's peak memory grew over the largest process before it, in KiB)."""
    import resource
    quiet = make_candidate(tmp_path / "quiet", body, config_of(data))
    flood = make_candidate(tmp_path / "flood", body, {**config_of(data), "flood": True})
    assert run_evaluate(quiet, data_dir)[0].returncode == 0  # the same evaluator, unflooded
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB: the largest child so far
    proc, result = run_evaluate(flood, data_dir)
    return proc, result, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss - before


def validation_rows(data):
    """The pinned rows as evaluate.py's docstring defines them: the first EVAL_TOKENS // SEQ_LEN rows
    of SEQ_LEN + 1 tokens of the validation documents, packed in their order."""
    import prepare
    rows = list(prepare.packed_rows(data.tokens("val"), data.doc_starts("val"), range(len(data.doc_starts("val"))),
                                    prepare.SEQ_LEN + 1, data.bos_id))[:prepare.EVAL_TOKENS // prepare.SEQ_LEN]
    return np.stack(rows)


UNIFORM = """
class Uniform(nn.Module):
    \"\"\"Probability 1/V for every token: each target costs ln V nats.\"\"\"

    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, idx):
        return torch.zeros(*idx.shape, self.vocab_size)


def build_model(config):
    return Uniform(config["vocab_size"])
"""

# Adds 10 to the logit of the *next input token*, i.e. the target: a near-perfect score on every
# position it can see ahead. PEEK_ROWS decides which rows peek, from their first tokens (which a
# probe row shares with its original, so both processes decide alike).
PEEKING = """
class Peeking(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, idx):
        ahead = 10.0 * F.one_hot(idx.roll(-1, dims=1), self.vocab_size).float()
        return ahead * PEEK_ROWS(idx)[:, None, None]


def build_model(config):
    return Peeking(config["vocab_size"])
"""


def peek_in_most_rows(idx):
    return (idx[:, 1:9].sum(dim=1) % 4 != 0).float()


# ---------------------------------------------------------------------------------------------
# The number


def test_a_uniform_model_scores_log2_vocab_times_tokens_per_byte(small_data_dir, small_data, tmp_path):
    import prepare
    run_dir = make_candidate(tmp_path / "run", UNIFORM, config_of(small_data))
    proc, result = run_evaluate(run_dir, small_data_dir)
    assert proc.returncode == 0
    targets = validation_rows(small_data)[:, 1:]
    nbytes = small_data.token_bytes[targets]
    counted = int((nbytes > 0).sum())
    assert counted < targets.size  # some targets are BOS: 0 bytes, left out of both sums
    assert result["val_bpb"] == pytest.approx(math.log2(small_data.vocab_size) * counted / int(nbytes.sum()), rel=1e-6)
    assert result["rows"] == prepare.EVAL_TOKENS // prepare.SEQ_LEN
    assert result["tokens"] == result["rows"] * prepare.SEQ_LEN == prepare.EVAL_TOKENS
    assert result["bytes"] == int(nbytes.sum())
    assert result["rejection"] is None


@pytest.fixture(scope="module")
def trained_evaluation(trained_run_dir, small_data_dir):
    proc, result = run_evaluate(trained_run_dir, small_data_dir, seed=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return result


def test_the_trained_checkpoint_gets_a_finite_val_bpb_and_passes_the_probe(trained_evaluation, small_data):
    result = trained_evaluation
    assert set(result) == {"val_bpb", "rows", "tokens", "bytes", "probes", "probe_max_delta", "probe_mean_at_cut",
                           "rejection", "eval_seconds", "load_seconds"}
    assert math.isfinite(result["val_bpb"]) and 0 < result["val_bpb"] < math.log2(small_data.vocab_size) * 10
    assert result["probes"] >= 8
    assert result["probe_max_delta"] == 0.0  # a causal model's prefix logits do not move at all
    assert result["rejection"] is None


def test_val_bpb_equals_the_reference_computation_in_process(trained_evaluation, trained_run_dir, small_data):
    """Everything evaluate.py adds (other processes, a shared buffer, a secret row order, padded
    batches) changes nothing: sum of nats / (ln 2 * sum of bytes) over the targets that have bytes."""
    import prepare
    spec = importlib.util.spec_from_file_location("train_for_reference", trained_run_dir / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    state, config = prepare.load_checkpoint(trained_run_dir / prepare.CHECKPOINT)
    model = train.build_model(config)
    model.load_state_dict(state)
    rows = torch.from_numpy(validation_rows(small_data))
    nats, nbytes = 0.0, 0
    with torch.no_grad():
        for batch in rows.split(8):
            x, y = batch[:, :-1], batch[:, 1:]
            losses = F.cross_entropy(model.eval()(x).float().flatten(0, 1), y.flatten(), reduction="none")
            b = torch.from_numpy(small_data.token_bytes.astype(np.int64))[y.flatten()]
            nats += float(losses.double()[b > 0].sum())
            nbytes += int(b.sum())
    assert trained_evaluation["bytes"] == nbytes
    assert trained_evaluation["val_bpb"] == pytest.approx(nats / (math.log(2) * nbytes), abs=1e-5)


def test_the_row_order_and_the_probes_do_not_change_val_bpb(trained_evaluation, trained_run_dir, small_data_dir):
    proc, other = run_evaluate(trained_run_dir, small_data_dir, seed=2)
    assert proc.returncode == 0
    assert other["val_bpb"] == pytest.approx(trained_evaluation["val_bpb"], abs=1e-9)


# ---------------------------------------------------------------------------------------------
# What the candidate's model gets to see


def test_a_model_that_looks_ahead_is_rejected(small_data_dir, small_data, tmp_path):
    body = "def PEEK_ROWS(idx):\n    return torch.ones(idx.shape[0])\n" + PEEKING  # every row
    run_dir = make_candidate(tmp_path / "run", body, config_of(small_data))
    proc, result = run_evaluate(run_dir, small_data_dir)
    assert proc.returncode == 0  # measured, and marked as not counting
    assert result["val_bpb"] < 1.0  # what it would have scored
    assert "looks ahead" in result["rejection"]
    assert result["probe_max_delta"] > 1.0


def test_a_model_that_looks_ahead_in_most_rows_only_is_rejected(small_data_dir, small_data, tmp_path):
    import inspect
    share = float(peek_in_most_rows(torch.from_numpy(validation_rows(small_data))).mean())
    assert 0.5 < share < 1.0  # most rows peek, some do not
    body = inspect.getsource(peek_in_most_rows).replace("peek_in_most_rows", "PEEK_ROWS") + PEEKING
    run_dir = make_candidate(tmp_path / "run", body, config_of(small_data))
    proc, result = run_evaluate(run_dir, small_data_dir)
    assert proc.returncode == 0
    assert "looks ahead" in result["rejection"]


def test_a_model_that_looks_one_token_ahead_a_little_is_rejected(small_data_dir, small_data, tmp_path):
    """A model that peeks at the next input token (the target) and raises its logit by a little, on
    every row. Its outputs on a probe row differ from the main pass only at the position just before
    the cut, by about the nats it gains there: under 0.25 there, and a mean advantage at the cut of
    0.015 passed the old 0.02 bound, so 0.015 nats were taken off every target, unseen. A causal model
    moves by 0 (bit for bit), so the bound is now far below what such a peek gains to be worth it."""
    body = UNIFORM + """
class PeeksALittle(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.inner = Uniform(vocab_size)

    def forward(self, idx):
        return self.inner(idx) + 0.015 * F.one_hot(idx.roll(-1, dims=1), self.inner.vocab_size).float()


def build_model(config):
    return PeeksALittle(config["vocab_size"])
"""
    run_dir = make_candidate(tmp_path / "run", body, config_of(small_data))
    proc, result = run_evaluate(run_dir, small_data_dir)
    assert proc.returncode == 0, result
    uniform = uniform_bpb(small_data)
    assert result["val_bpb"] < uniform - 0.002  # what peeking would have gained
    assert result["probe_max_delta"] < 0.25 and 0.01 < result["probe_mean_at_cut"] < 0.02  # inside the old bounds
    assert "looks ahead" in (result["rejection"] or "")


def test_a_model_that_looks_ahead_early_in_its_rows_only_is_rejected(small_data_dir, small_data, tmp_path):
    """A probe's cut fell in the last three quarters of a row (T // 4 to T - 1), and the positions
    compared are those before it, whose inputs are the original row's up to the cut. A model that
    looked ahead only at positions whose next token lies in a row's first quarter saw the same
    tokens in both processes: its outputs did not move at all (probe Δ = 0), and it scored those
    positions nearly perfectly, a quarter of every row. The cut now falls anywhere after the first
    token, so every position is the one before a cut as often as any other."""
    import prepare
    body = f"""
class PeeksEarly(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, idx):
        ahead = 10.0 * F.one_hot(idx.roll(-1, dims=1), self.vocab_size).float()
        ahead[:, {prepare.SEQ_LEN // 4 - 1}:] = 0  # the next token must lie in the first quarter
        return ahead


def build_model(config):
    return PeeksEarly(config["vocab_size"])
"""
    run_dir = make_candidate(tmp_path / "run", body, config_of(small_data))
    proc, result = run_evaluate(run_dir, small_data_dir)
    assert proc.returncode == 0, result
    uniform = uniform_bpb(small_data)
    assert result["val_bpb"] < 0.9 * uniform  # what peeking would have gained
    assert "looks ahead" in (result["rejection"] or "")


def test_a_huge_offset_on_every_logit_changes_nothing(small_data_dir, small_data, tmp_path):
    """Adding one constant to all of a position's logits leaves its distribution as it was. Scored as
    logsumexp(x) - x[y], two numbers near 1e9 were subtracted in float32, whose step there (64) is
    more than ln V: every shifted position cost 0 nats. Shifting about half the rows (chosen from
    their first tokens, so both model servers choose alike) passed the probe with val_bpb roughly
    halved; shifting all of them, with 0."""
    body = UNIFORM + """
class Shifted(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.inner = Uniform(vocab_size)

    def forward(self, idx):
        shift = 1e9 * (idx[:, 1:9].sum(dim=1) % 2 == 0).float()
        return self.inner(idx) + shift[:, None, None]


def build_model(config):
    return Shifted(config["vocab_size"])
"""
    run_dir = make_candidate(tmp_path / "run", body, config_of(small_data))
    proc, result = run_evaluate(run_dir, small_data_dir)
    assert proc.returncode == 0, result
    uniform = uniform_bpb(small_data)
    assert result["val_bpb"] == pytest.approx(uniform, rel=1e-6)
    assert result["rejection"] is None


def test_the_logits_scored_are_the_evaluators_copy_not_the_shared_buffer(tmp_path):
    """The model server may write into its logits buffer at any time, from a thread of its own, while
    the evaluator scores a batch (two requests are in flight). On a CPU the logits were a view of
    that buffer: the server could change them between the log-sum-exp and the target's logit, and
    take a constant off every loss that the probe, racing alike in both servers, does not see."""
    import evaluate
    for scorer in (evaluate.NumpyScorer(), evaluate.TorchScorer()):
        server = evaluate.ModelServer.__new__(evaluate.ModelServer)
        server.rows, server.vocab, server.scorer = 2, 3, scorer
        server.slot_values = 2 * evaluate.SEQ_LEN * 3
        server.buffer = np.memmap(tmp_path / "logits.bin", dtype=np.float32, mode="w+", shape=(2 * server.slot_values,))
        server.buffer[:] = 1.0
        logits = server.logits(1, 2)
        server.buffer[:] = 5.0  # the server writes again
        assert tuple(logits.shape) == (2, evaluate.SEQ_LEN, 3)
        assert bool((logits == 1.0).all()), type(scorer).__name__


def test_the_two_scorers_give_the_same_losses():
    """The cpu-tiny profile scores with numpy (no torch import in the evaluator), the gpu profile
    with torch: the same log_softmax, step for step, on ordinary logits, on logits shifted by 1e9
    (a plain logsumexp(x) - x[y] gave 0 nats there), and a loss that is not finite where a logit
    is NaN or +inf."""
    import evaluate
    numpy_scorer, torch_scorer = evaluate.NumpyScorer(), evaluate.TorchScorer()
    assert isinstance(evaluate.scorer_for("cpu-tiny"), evaluate.NumpyScorer)
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(4, 16, 50)).astype(np.float32)
    y = rng.integers(0, 50, size=(4, 16))
    for shift in (0.0, 1e9):
        shifted = logits + np.float32(shift)
        ours = numpy_scorer.losses(shifted, y)
        theirs = torch_scorer.losses(torch.from_numpy(shifted), y)
        assert ours.dtype == np.float32 and ours.shape == (4, 16)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
        if shift == 0.0:
            exact = -F.log_softmax(torch.from_numpy(logits).double(), -1).gather(-1, torch.from_numpy(y)[..., None])[..., 0]
            np.testing.assert_allclose(ours, exact.numpy(), rtol=1e-5, atol=1e-5)
    assert numpy_scorer.losses(logits[0, :5], y[0, :5]).shape == (5,)  # a probe's prefix: one row, cut
    # At float32's ends: x - max overflows to -inf for the others, or for the target (an infinite loss).
    edge = np.zeros((1, 3, 5), dtype=np.float32)
    edge[0, 0, :], edge[0, 0, 0] = -3e38, 3e38
    edge[0, 1, :], edge[0, 1, 1] = 3e38, -3e38
    edge[0, 2, :] = np.finfo(np.float32).max
    ours, theirs = numpy_scorer.losses(edge, [[0, 1, 2]]), torch_scorer.losses(torch.from_numpy(edge), [[0, 1, 2]])
    np.testing.assert_array_equal(ours, theirs)
    assert ours[0, 0] == 0 and ours[0, 1] == np.inf and ours[0, 2] == pytest.approx(math.log(5))
    for bad in (np.nan, np.inf, -np.inf):
        broken = logits.copy()
        broken[1, 3, 7] = bad
        ours = numpy_scorer.losses(broken, y)
        theirs = torch_scorer.losses(torch.from_numpy(broken), y)
        assert np.array_equal(np.isfinite(ours), np.isfinite(theirs)), bad
        assert np.isfinite(np.delete(ours.ravel(), 1 * 16 + 3)).all()
        assert np.isfinite(ours[1, 3]) == (bad == -np.inf and y[1, 3] != 7)  # -inf: a token it rules out


def test_the_model_is_given_the_inputs_only_never_the_targets(small_data_dir, small_data, tmp_path):
    body = """
    class Inquisitive(nn.Module):
        def __init__(self, vocab_size, seq_len):
            super().__init__()
            self.vocab_size, self.seq_len = vocab_size, seq_len

        def forward(self, *args, **kwargs):
            assert len(args) == 1 and not kwargs, f"got {len(args)} arguments and {sorted(kwargs)}"
            (idx,) = args
            assert isinstance(idx, torch.Tensor) and idx.dtype == torch.int64, type(idx)
            assert idx.dim() == 2 and idx.shape[1] == self.seq_len, idx.shape  # no extra, last target
            return torch.zeros(*idx.shape, self.vocab_size)


    def build_model(config):
        return Inquisitive(config["vocab_size"], config["seq_len"])
    """
    run_dir = make_candidate(tmp_path / "run", body, config_of(small_data))
    proc, result = run_evaluate(run_dir, small_data_dir)
    assert proc.returncode == 0, result
    assert result["rejection"] is None


# ---------------------------------------------------------------------------------------------
# Runs that cannot be measured: exit 1 and an `evaluation: {"error": ...}` line


def test_no_checkpoint_is_an_error_naming_save_model(small_data_dir, tmp_path):
    run_dir = make_run_dir(tmp_path / "run")
    proc, result = run_evaluate(run_dir, small_data_dir)
    assert proc.returncode == 1
    assert set(result) == {"error"}
    assert "save_model" in result["error"]


def test_a_model_that_crashes_is_an_error_with_its_exception(small_data_dir, small_data, tmp_path):
    import prepare
    body = """
    def build_model(config):
        raise RuntimeError("the model refuses: 4711")
    """
    run_dir = make_run_dir(tmp_path / "run", CANDIDATE_HEADER + textwrap.dedent(body))
    prepare.save_model(torch.nn.Identity(), config_of(small_data), path=run_dir / prepare.CHECKPOINT)
    proc, result = run_evaluate(run_dir, small_data_dir)
    assert proc.returncode == 1
    assert set(result) == {"error"}
    assert "RuntimeError: the model refuses: 4711" in result["error"]


def test_logits_of_the_wrong_shape_are_an_error_naming_the_expected_shape(small_data_dir, small_data, tmp_path):
    import prepare
    body = """
    class Short(nn.Module):
        def __init__(self, vocab_size):
            super().__init__()
            self.vocab_size = vocab_size

        def forward(self, idx):
            return torch.zeros(*idx.shape, self.vocab_size - 1)


    def build_model(config):
        return Short(config["vocab_size"])
    """
    run_dir = make_candidate(tmp_path / "run", body, config_of(small_data))
    proc, result = run_evaluate(run_dir, small_data_dir)
    assert proc.returncode == 1
    assert set(result) == {"error"}
    assert "expected logits of shape (" in result["error"]
    assert f", {prepare.SEQ_LEN}, {small_data.vocab_size})" in result["error"]


def test_a_model_server_flooding_one_endless_line_is_read_in_bounded_memory(small_data_dir, small_data, tmp_path):
    """The model server is candidate code, and evaluate.py (outside the sandbox) reads its output: one
    line of 256 MiB with no newline was all held, decoded and joined into the error here (peak memory
    up by ~0.8 GB). A line is cut at LINE_LIMIT bytes and the rest dropped as it is read."""
    body = UNIFORM + """
import sys
uniform = build_model


def build_model(config):
    if __name__ == "train" and config.get("flood"):  # in the model server only
        chunk = "x" * (1 << 20)
        for _ in range(256):
            sys.stderr.write(chunk)
        sys.stderr.flush()
        raise RuntimeError("flooded")
    return uniform(config)
"""
    proc, result, grown = flooded_evaluation(body, small_data_dir, small_data, tmp_path)
    assert proc.returncode == 1 and "flooded" in result["error"]
    assert grown < 128 * 1024, f"the evaluator's peak memory grew by {grown // 1024} MiB over the largest process before it"


def test_a_model_server_flooding_reply_lines_is_read_in_bounded_memory(small_data_dir, small_data, tmp_path):
    """Lines on the reply channel were queued without bound, and evaluate.py takes one a request. A
    model whose forward never returns, with its input pipe shrunk to a page (F_SETPIPE_SZ), holds
    evaluate.py in a write of its next request, outside the sandbox, while a thread of the model
    writes lines to the reply channel: every one of them was kept, for as long as the worker lets an
    evaluation run (300 s and more). The queue now holds a few lines; the rest wait in the pipe."""
    body = UNIFORM + """
import fcntl, os, sys, threading, time
uniform = build_model


class Stuck(nn.Module):
    def forward(self, idx):
        time.sleep(3600)


def flood():
    try:
        server = sys.modules["__main__"]
        try:
            fcntl.fcntl(server._REQUESTS.fileno(), fcntl.F_SETPIPE_SZ, 4096)
        except OSError:
            pass  # EBUSY: the evaluator's requests already fill more than a page, and it waits in a write
        out = os.dup(server._REPLY.fileno())
        os.set_blocking(out, False)
        line, sent, deadline = b"x" * 65535 + b"\\n", 0, time.time() + 6
        while sent < 768 << 20 and time.time() < deadline:
            try:
                sent += os.write(out, line)
            except BlockingIOError:
                time.sleep(0.001)
        print("flooded", sent >> 20, "MiB", file=sys.stderr, flush=True)
    finally:
        os._exit(3)  # whatever happened above: a thread that died left the server stuck in forward for an hour


def build_model(config):
    if __name__ == "train" and config.get("flood"):  # in the model server only
        threading.Thread(target=flood, daemon=True).start()
        return Stuck()
    return uniform(config)
"""
    proc, result, grown = flooded_evaluation(body, small_data_dir, small_data, tmp_path)
    assert proc.returncode == 1, result
    assert grown < 128 * 1024, f"the evaluator's peak memory grew by {grown // 1024} MiB over the largest process before it"


# ---------------------------------------------------------------------------------------------
# The checkpoint format: safetensors, written and read by prepare.py


class Holder(torch.nn.Module):
    def __init__(self, tensors):
        super().__init__()
        for name, t in tensors.items():
            self.register_buffer(name, t)


TENSORS = {
    "weights": torch.randn(3, 5, dtype=torch.float32),
    "bf16": torch.randn(4, 2, dtype=torch.float32).to(torch.bfloat16),
    "counts": torch.tensor([[1, -2, 3], [2**40, 0, -(2**62)]], dtype=torch.int64),
    "scalar": torch.tensor(0.5),
}
CONFIG = {"vocab_size": 512, "depth": 2, "note": "any JSON"}


def test_save_model_and_load_checkpoint_round_trip_float32_bfloat16_and_int64(tmp_path):
    import prepare
    prepare.save_model(Holder(TENSORS), CONFIG, path=tmp_path / "model.safetensors")
    state, config = prepare.load_checkpoint(tmp_path / "model.safetensors")
    assert config == CONFIG
    assert sorted(state) == sorted(TENSORS)
    for name, t in TENSORS.items():
        assert state[name].dtype == t.dtype and state[name].shape == t.shape
        assert torch.equal(state[name], t)


def test_save_model_writes_the_safetensors_layout(tmp_path):
    import prepare
    prepare.save_model(Holder(TENSORS), CONFIG, path=tmp_path / "model.safetensors")
    raw = (tmp_path / "model.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    assert json.loads(header.pop("__metadata__")["config"]) == CONFIG
    dtypes = {torch.float32: "F32", torch.bfloat16: "BF16", torch.int64: "I64"}
    end = 0
    for name, t in TENSORS.items():
        info = header[name]
        assert info["dtype"] == dtypes[t.dtype] and info["shape"] == list(t.shape)
        a, b = info["data_offsets"]
        assert b - a == t.numel() * t.element_size()
        expected = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()  # little-endian
        assert body[a:b] == expected
        end = max(end, b)
    assert end == len(body)


def test_load_checkpoint_refuses_a_truncated_file(tmp_path):
    import prepare
    prepare.save_model(Holder(TENSORS), CONFIG, path=tmp_path / "model.safetensors")
    raw = (tmp_path / "model.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    for cut in (4, 8 + n // 2, len(raw) - 3):  # in the length, in the header, in the tensors
        (tmp_path / "cut.safetensors").write_bytes(raw[:cut])
        with pytest.raises(prepare.DataError):
            prepare.load_checkpoint(tmp_path / "cut.safetensors")


def test_load_checkpoint_refuses_an_oversized_header(tmp_path):
    import prepare
    prepare.save_model(Holder(TENSORS), CONFIG, path=tmp_path / "model.safetensors")
    raw = (tmp_path / "model.safetensors").read_bytes()
    for n in (len(raw), 2**40):
        (tmp_path / "big.safetensors").write_bytes(n.to_bytes(8, "little") + raw[8:])
        with pytest.raises(prepare.DataError):
            prepare.load_checkpoint(tmp_path / "big.safetensors")
