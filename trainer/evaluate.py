"""
evaluate.py: THE metric, val_bpb, measured by locked code the candidate cannot influence. LOCKED.

Training (train.py, untrusted) ends by saving its weights (prepare.save_model). This program then
starts the candidate's model in separate processes (model_server.py, each in a fresh sandbox when
the worker runs it), sends them validation *inputs* only and computes the loss itself from the
logits they return. So no code of the candidate runs in this process: it cannot patch torch or this
file, read its frames, see the targets, or print the number.

  python evaluate.py --run-dir DIR [--checkpoint FILE] [--server JSON --shm FILE]*2 [--seed N]

  --server  the command line of a model server (a JSON list) that already carries its own
            --run-dir/--checkpoint/--shm (the worker wraps it in a sandbox); this program appends
            --rows/--seq-len/--vocab/--dtype. Given twice: the main server and the probe server.
            Without it, both are started here as plain subprocesses (tests, `worker solo`).
  --shm     where this program creates each server's logits buffer (the server sees it at its
            own path).
  --wait    start the servers (torch imported, CUDA up; on the cpu-tiny profile the main one only)
            and read the validation split, then wait for a line `go` on stdin before touching the
            checkpoint: the worker starts this while training still runs, so evaluation's start-up
            costs no time after it.
Reads the validation split from the data set (AUTORESEARCH_DATA, as prepare.py), and prints one
line `evaluation: {json}` with val_bpb, the token and byte counts, the causality probe's numbers,
and `rejection` (null, or why the number must not count). Exit 0 when that line was printed.

bpb = sum(nats) / (ln 2 * sum(bytes)) over the target tokens of the pinned validation rows;
special tokens (BOS) carry 0 bytes and are left out of both sums. The rows are the first
EVAL_TOKENS // SEQ_LEN rows of the validation documents packed in their fixed order, as before;
they are sent to the model in a secret random order (the sum does not depend on it).

Causality probe: a model that looks at later tokens would score well on tokens it can see. Some
rows, chosen at random with a secret seed, are sent again to a second, fresh model process — the
same prefix, a different real continuation after a random cut. A causal model gives the same
outputs on the prefix in both processes; the two processes cannot talk to each other, so a model
cannot replay its first answer, and it cannot tell a probe row from a normal one.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the script's folder off the path

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import queue  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from prepare import CHECKPOINT, EVAL_TOKENS, PROFILE, SEQ_LEN, DataError, load_data, packed_rows  # noqa: E402

EVAL_ROWS = {"gpu": 32, "cpu-tiny": 8}[PROFILE]  # rows per request: 1 GiB of bf16 logits on GPU
PROBE_SHARE = 32              # one probe row per this many evaluated rows, at least MIN_PROBES
MIN_PROBES = 16
PROBE_MAX_DELTA = 0.25        # nats: no prefix position of a probe may move more than this
# nats: the mean advantage at the last position before the cut. Every peek at later tokens shows
# there (the cut falls at a random position, and the probe server has no way to the real next
# token), so this bounds what looking ahead may gain per token on average. At 0.02 a model that
# added 0.015 to the logit of the next input token on every row passed, 0.015 nats off every target
# (~0.005 bits per byte, five times the ratchet's minDelta); a causal model moves by 0, bit for bit.
PROBE_MEAN_AT_CUT = 0.001
REPLY_TIMEOUT = 600           # seconds to wait for one reply (the first includes loading the model)
LINE_LIMIT = 1 << 16          # bytes kept of one line a model server writes; the rest of it is dropped


class NumpyScorer:
    """Scores on the CPU with numpy, for the cpu-tiny profile: float32 logits, and no torch in this
    process. Importing torch cost ~1.5 CPU-seconds here, a third of what an evaluation of 8,192
    tokens spent on CPU cores (and taken from the training beside it when the worker starts the
    evaluator early). The same formula as TorchScorer, step for step, in the same precision."""

    dtype = "float32"          # what the model servers write into their buffers
    start_probe_early = False  # a torch import on CPU cores is CPU time, not a wait; see main()

    def pin(self, buffer):
        pass

    def logits(self, raw, n, vocab):
        # A copy of our own, always: the server may write into its buffer at any time (a thread of
        # its own, while two requests are in flight). On a CPU, float32 logits were a view of it,
        # and a server that changed them between the log-sum-exp and the target's logit took a
        # constant off every loss, alike in both servers, so the probe saw nothing.
        return np.array(raw, dtype=np.float32, copy=True).reshape(n, SEQ_LEN, vocab)

    def losses(self, logits, y):
        """Per-token cross-entropy in nats (float32, like the logits), computed here from what the
        model returned: log_softmax as torch computes it, each position's largest logit taken off
        before the sum. logsumexp(x) - x[y] subtracted two numbers of the logits' own size, and a
        model that added 1e9 to all its logits (float32's step there is 64, more than ln V) scored 0
        nats on every token it liked, causally, unseen by the probe. A logit of NaN or +inf makes
        its position's loss NaN, which the verdict rejects."""
        with np.errstate(all="ignore"):
            shifted = logits - logits.max(axis=-1, keepdims=True)
            log_sum = np.log(np.exp(shifted).sum(axis=-1))
            picked = np.take_along_axis(shifted, np.asarray(y, dtype=np.int64)[..., None], axis=-1)[..., 0]
            return log_sum - picked


class TorchScorer:
    """Scores with torch, on the GPU where there is one (bfloat16 logits, 1 GiB a request: numpy
    would take minutes over the gpu profile's 8.4M tokens), else on the CPU in float32."""

    def __init__(self):
        import torch
        self.torch = torch
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = "bfloat16" if self.device.type == "cuda" else "float32"
        self.start_probe_early = True  # its start-up (torch, the CUDA context) is seconds of waiting

    def pin(self, buffer):
        """Page-locks a shared logits buffer for the GPU: copies from pinned memory run at the bus's
        speed, from pageable memory at a fraction of it. Where CUDA cannot (or is absent), nothing."""
        if self.device.type != "cuda":
            return
        try:
            cudart = self.torch.cuda.cudart()
            if int(cudart.cudaHostRegister(buffer.ctypes.data, buffer.nbytes, 0)) != 0:
                cudart.cudaGetLastError()  # a buffer on a disk-backed file cannot be pinned: clear, go on
        except (AttributeError, RuntimeError):
            pass

    def logits(self, raw, n, vocab):
        raw = self.torch.from_numpy(raw)
        raw = raw.view(self.torch.bfloat16) if self.dtype == "bfloat16" else raw
        return raw.to(self.device, copy=True).float().view(n, SEQ_LEN, vocab)  # our own copy: NumpyScorer.logits

    def losses(self, logits, y):
        """NumpyScorer.losses, with torch's log_softmax; returned to the CPU as a numpy array."""
        y = self.torch.from_numpy(np.asarray(y, dtype=np.int64)).to(self.device)
        losses = -self.torch.log_softmax(logits, dim=-1).gather(-1, y[..., None]).squeeze(-1)
        return losses.cpu().numpy()


def scorer_for(profile):
    """numpy on the cpu-tiny profile, torch on the gpu profile. The profile decides, not the machine:
    every number of one campaign (one profile, prepare.fingerprint) is then scored by the same code."""
    return NumpyScorer() if profile == "cpu-tiny" else TorchScorer()


def bounded_lines(stream):
    """The lines of a model server's output, each cut at LINE_LIMIT bytes with the rest of it dropped
    as it is read: the server is candidate code, and one endless line (no newline) was all held here,
    outside the sandbox, then decoded and joined into the error (256 MiB took ~1 GB)."""
    while True:
        line = stream.readline(LINE_LIMIT)
        if not line:
            return
        rest = line
        while not rest.endswith(b"\n"):
            rest = stream.readline(LINE_LIMIT)
            if not rest:
                break
        yield line


class ServerError(Exception):
    """The candidate's model could not be run (crash, wrong output): a failed run, not a number."""


class ModelServer:
    """One model_server.py process and its logits buffer."""

    def __init__(self, argv, shm, rows, vocab, scorer, cwd=None):
        self.rows, self.vocab, self.scorer = rows, vocab, scorer
        self.slot_values = rows * SEQ_LEN * vocab
        np_dtype = np.float32 if scorer.dtype == "float32" else np.int16
        with open(shm, "wb") as f:
            f.truncate(2 * self.slot_values * np.dtype(np_dtype).itemsize)
        self.buffer = np.memmap(shm, dtype=np_dtype, mode="r+", shape=(2 * self.slot_values,))
        scorer.pin(self.buffer)
        argv = [*argv, "--rows", str(rows), "--seq-len", str(SEQ_LEN), "--vocab", str(vocab), "--dtype", scorer.dtype]
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # A few replies at most: the server owes one a request, two in flight. Unbounded, a model that
        # held this process in a write of its next request (its forward stuck, its input pipe shrunk
        # to a page) and wrote lines to its reply channel had every one of them kept here, outside the
        # sandbox, for as long as the worker let the evaluation run. Past these, the pipe waits.
        self.replies, self.stderr = queue.Queue(maxsize=4), collections.deque(maxlen=40)
        threading.Thread(target=self._read_replies, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_replies(self):
        for line in bounded_lines(self.proc.stdout):
            self.replies.put(line)
        self.replies.put(None)

    def _read_stderr(self):
        for line in bounded_lines(self.proc.stderr):
            self.stderr.append(line.decode("utf-8", "replace").rstrip())

    def _fail(self, why):
        self.close()
        tail = "\n".join(self.stderr)
        raise ServerError(f"{why}{': ' + tail.splitlines()[-1] if tail.strip() else ''}\n{tail}")

    def load(self):
        try:
            self.proc.stdin.write(b'{"load": true}\n')
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._fail("the model process closed its input")

    def reply(self):
        try:
            line = self.replies.get(timeout=REPLY_TIMEOUT)
        except queue.Empty:
            self._fail(f"the model gave no answer within {REPLY_TIMEOUT}s")
        if line is None:
            time.sleep(0.2)  # let the stderr reader catch the traceback
            self._fail(f"the model process exited (code {self.proc.wait()})")
        try:
            msg = json.loads(line)
        except ValueError:
            self._fail(f"the model process wrote something that is not a reply: {line[:200]!r}")
        if not isinstance(msg, dict) or msg.get("error") or not msg.get("ok"):
            self._fail(f"the model failed: {msg.get('error') if isinstance(msg, dict) else msg}")
        return msg

    def request(self, slot, x):
        try:
            self.proc.stdin.write(json.dumps({"slot": slot, "rows": len(x)}).encode() + b"\n")
            self.proc.stdin.write(np.ascontiguousarray(x, dtype="<i4").tobytes())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._fail("the model process closed its input")

    def logits(self, slot, n):
        """The logits of `n` rows in `slot`, copied out of the buffer (the scorer's own copy)."""
        return self.scorer.logits(self.buffer[slot * self.slot_values: slot * self.slot_values + n * SEQ_LEN * self.vocab], n, self.vocab)

    def stop(self):
        """Kills the process at once and waits for it: when it has exited, so has its sandbox (bwrap's
        PID 1 dies with it, and every process of its PID namespace with that)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def run_batches(server, inputs, on_logits):
    """Sends every batch of inputs through one server, two requests in flight so the model computes
    the next batch while this one is scored; on_logits(i, logits) for each, in order."""
    pending = collections.deque()

    def take():
        i, slot, n = pending.popleft()
        server.reply()
        on_logits(i, server.logits(slot, n))

    for i, x in enumerate(inputs):
        server.request(i % 2, x)
        pending.append((i, i % 2, len(x)))
        if len(pending) == 2:
            take()
    while pending:
        take()


def plan_probes(rows, rng, count):
    """(row index, cut, probe inputs) for `count` random rows: the row's first `cut` inputs, then a
    real stretch of another row. The targets compared are the original row's, before the cut.

    The cut falls anywhere after the first input, each place alike: a position is compared only
    where what it could look ahead at changed, and the position before the cut is the one whose
    next token changed. Cut in the last three quarters only (T // 4 and on), a model that looked
    ahead only where the next token lay in a row's first quarter never moved: Δ = 0 on every probe,
    and a quarter of every row scored nearly perfectly."""
    T = SEQ_LEN
    probes = []
    for r in rng.choice(len(rows), size=count, replace=False):
        cut = int(rng.integers(1, T))
        other = int(rng.integers(len(rows) - 1))
        other += other >= r
        start = int(rng.integers(0, cut + 2))
        probes.append((int(r), cut, np.concatenate([rows[r][:cut], rows[other][start:start + T - cut]])))
    return probes


def main_pass(server, rows, token_bytes, rng, probed):
    """Every row once, in a secret order, short last batch padded and ignored. Returns the sums of
    nats and bytes, and the per-token losses of the probed rows."""
    B = server.rows
    order = rng.permutation(len(rows))
    index = [order[i:i + B] for i in range(0, len(order), B)]
    inputs = [rows[np.concatenate([idx, np.repeat(idx[:1], B - len(idx))]), :-1] for idx in index]
    sums, kept = {"nats": 0.0, "bytes": 0}, {}

    def score(i, logits):
        idx = index[i]
        y = rows[idx, 1:]
        losses = server.scorer.losses(logits[:len(idx)], y)
        b = token_bytes[y]
        sums["nats"] += float((losses.astype(np.float64) * (b > 0)).sum())
        sums["bytes"] += int(b.sum())
        for j, r in enumerate(idx):
            if int(r) in probed:
                kept[int(r)] = losses[j].copy()

    run_batches(server, inputs, score)
    return sums, kept


def probe_pass(server, rows, probes, kept, rng):
    """The probe rows among ordinary rows, in batches of the same size, through a fresh process.
    Returns, per probe, the largest change of a prefix loss and the change just before the cut."""
    B = server.rows
    filler = rng.choice(len(rows), size=(-len(probes)) % B, replace=len(rows) < B)
    items = [p for p in probes] + [(None, None, rows[int(r), :-1]) for r in filler]
    items = [items[k] for k in rng.permutation(len(items))]
    chunks = [items[i:i + B] for i in range(0, len(items), B)]
    largest, at_cut = [], []

    def compare(i, logits):
        for j, (r, cut, _) in enumerate(chunks[i]):
            if r is None:
                continue
            delta = server.scorer.losses(logits[j, :cut], rows[r, 1:cut + 1]) - kept[r][:cut]
            largest.append(float(np.abs(delta).max()) if bool(np.isfinite(delta).all()) else math.inf)
            at_cut.append(float(delta[cut - 1]))

    run_batches(server, [np.stack([x for _, _, x in chunk]) for chunk in chunks], compare)
    return largest, at_cut


def validation_rows(data):
    rows = np.stack(list(packed_rows(data.tokens("val"), data.doc_starts("val"), range(len(data.doc_starts("val"))),
                                     SEQ_LEN + 1, data.bos_id))[:EVAL_TOKENS // SEQ_LEN])
    if len(rows) == 0:
        raise DataError(f"the validation split of {data.dir} is smaller than one row of {SEQ_LEN + 1} tokens")
    return rows


def evaluate(servers, start_probe_server, data, rows, rng):
    """val_bpb through servers[0] (its model loaded already); the causality probe through servers[1],
    which loads the candidate's model only once servers[0] has exited. Alive together, the two ran
    candidate code side by side, and shared state the sandbox cannot take away (a lock on a file both
    see read-only, the kernel's memory counters) let the main server tell the probe server what it
    had answered: a model that looks ahead could replay it (worker/test/fixtures/hostile/variants.ts,
    "talk through flock"). On a GPU the probe server was started with the main one, so this costs a
    model load, not a start-up; on the cpu-tiny profile it is started here (appended to `servers`)."""
    token_bytes = data.token_bytes.astype(np.int64)
    probes = plan_probes(rows, rng, min(len(rows), max(MIN_PROBES, len(rows) // PROBE_SHARE)))
    sums, kept = main_pass(servers[0], rows, token_bytes, rng, {r for r, _, _ in probes})
    servers[0].stop()
    if len(servers) == 1:
        servers.append(start_probe_server())
        servers[1].reply()  # torch imported, no candidate code yet
    servers[1].load()
    servers[1].reply()  # the candidate's model is loaded in the probe server
    largest, at_cut = probe_pass(servers[1], rows, probes, kept, rng)
    return {
        "val_bpb": sums["nats"] / (math.log(2) * sums["bytes"]), "rows": len(rows), "tokens": int(len(rows) * SEQ_LEN),
        "bytes": sums["bytes"], "probes": len(probes), "probe_max_delta": max(largest), "probe_mean_at_cut": float(np.mean(at_cut)),
    }


def verdict(result):
    """Why this number must not count, or None. Written as `not (x <= limit)` so NaN fails too."""
    if not (math.isfinite(result["val_bpb"]) and result["val_bpb"] > 0):
        return f"the model's losses are not finite (val_bpb {result['val_bpb']})"
    if not (result["probe_max_delta"] <= PROBE_MAX_DELTA and result["probe_mean_at_cut"] <= PROBE_MEAN_AT_CUT):
        return (f"the model looks ahead: changing tokens after a cut moved its outputs before the cut "
                f"(largest change {result['probe_max_delta']:.3f} nats, mean advantage at the cut "
                f"{result['probe_mean_at_cut']:.3f} nats over {result['probes']} probes; a causal model moves 0)")
    return None


def finite_or_none(result):
    """JSON has no NaN: a non-finite number is printed as null (the rejection says why)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}


def default_server(run_dir, checkpoint, shm):
    here = os.path.dirname(os.path.abspath(__file__))
    return [sys.executable, "-B", os.path.join(here, "model_server.py"), "--run-dir", run_dir, "--checkpoint", checkpoint, "--shm", shm]


def main(argv=None):
    ap = argparse.ArgumentParser(description="Measure val_bpb of a trained checkpoint (trusted).")
    ap.add_argument("--run-dir", default=".")
    ap.add_argument("--checkpoint", help=f"default: RUN_DIR/{CHECKPOINT}")
    ap.add_argument("--server", action="append", default=[], help="model server command line (JSON list); twice")
    ap.add_argument("--shm", action="append", default=[], help="logits buffer file of each server")
    ap.add_argument("--seed", type=int, help="fixed probe/order seed (tests); default: secret")
    ap.add_argument("--wait", action="store_true", help="start up, then wait for `go` on stdin")
    args = ap.parse_args(argv)
    run_dir = os.path.abspath(args.run_dir)
    checkpoint = args.checkpoint or os.path.join(run_dir, CHECKPOINT)
    if len(args.server) not in (0, 2) or len(args.shm) != len(args.server):
        ap.error("give --server and --shm twice (main and probe server), or neither")
    scratch = tempfile.mkdtemp(prefix="arg-eval-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    scorer = scorer_for(PROFILE)
    servers = []
    try:
        data = load_data()
        if args.server:
            commands = [(json.loads(s), shm) for s, shm in zip(args.server, args.shm)]
        else:
            shms = [os.path.join(scratch, f"logits{i}.bin") for i in range(2)]
            commands = [(default_server(run_dir, checkpoint, shm), shm) for shm in shms]
        # Unsandboxed servers (tests, `worker solo`) run in the run folder, as training did; sandboxed
        # ones are put there by their sandbox. This process never works there: the worker starts it
        # elsewhere, since what training left in that folder is no one's to find by a relative name.
        cwd = None if args.server else run_dir
        start = [lambda i=i: ModelServer(*commands[i], EVAL_ROWS, data.vocab_size, scorer, cwd) for i in range(2)]
        # The probe server starts with the main one where its start-up is a wait (a GPU's CUDA
        # context, done while training runs), and when it is needed where it is CPU time (a torch
        # import on the cores the training beside it uses; a model that fails to load never needs it).
        servers.extend(s() for s in (start if scorer.start_probe_early else start[:1]))
        rows = validation_rows(data)
        for s in servers:
            s.reply()  # torch imported, no candidate code yet
        if args.wait and sys.stdin.readline().strip() != "go":
            raise ServerError("cancelled before the checkpoint was ready")
        started = time.time()
        # lstat, never following a link: this process is outside the sandbox, and whether a link's
        # host target exists would tell the author what is on the volunteer's machine.
        if not os.path.lexists(checkpoint):
            raise ServerError(f"training saved no checkpoint ({os.path.basename(checkpoint)}): "
                              "train.py must end with prepare.save_model(model, config)")
        if not stat.S_ISREG(os.lstat(checkpoint).st_mode):
            raise ServerError(f"the checkpoint ({os.path.basename(checkpoint)}) is not a plain file (a link, a folder, "
                              "a pipe): train.py must end with prepare.save_model(model, config)")
        servers[0].load()
        servers[0].reply()  # the candidate's model is loaded in the main server (the probe's: evaluate)
        loaded = time.time()
        rng = np.random.default_rng(args.seed if args.seed is not None else secrets.randbits(64))
        result = evaluate(servers, start[1], data, rows, rng)
        result["rejection"] = verdict(result)
    except (ServerError, DataError) as e:
        print("evaluation: " + json.dumps({"error": str(e)[:4000]}), flush=True)
        return 1
    finally:
        for s in servers:
            s.close()
        shutil.rmtree(scratch, ignore_errors=True)
    result["eval_seconds"] = round(time.time() - started, 3)
    result["load_seconds"] = round(loaded - started, 3)
    print("evaluation: " + json.dumps(finite_or_none(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
