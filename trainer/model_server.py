"""
model_server.py: runs a candidate's model for the trusted evaluator. LOCKED.

This process holds UNTRUSTED code: it imports the candidate's train.py, rebuilds the model with
`train.build_model(config)`, loads the weights training saved, and answers forward passes. It runs
in a sandbox of its own (no data, no network, nothing writable but its logits buffer, a file it
cannot grow), started by evaluate.py, which sends it input tokens only — never the targets — and
computes the loss itself from the logits it returns. Nothing this process does can change how
evaluate.py counts: at worst it returns bad logits, which score badly, or logits that look ahead,
which the causality probe catches.

  python model_server.py --run-dir DIR --checkpoint FILE --shm FILE --rows B --seq-len T
                         --vocab V --dtype float32|bfloat16

Protocol, over stdin/stdout (the candidate's own prints go to stderr):
  at start  {"ok": true, "warm": true} once torch is imported (and CUDA started): no candidate code yet
  load      (one line) {"load": true}: imports train.py, loads the weights; reply {"ok": true, "ready": true}
  request  (one line) {"slot": s, "rows": n}  then n*T little-endian int32 tokens on stdin
  reply    (one line) {"ok": true}  once the logits (n, T, V) are in slot s of the buffer file,
                      or {"error": "..."}
  The buffer file holds 2 slots of B*T*V values of --dtype; evaluate.py created it.
"""

import os
import sys

# The reply channel is a private copy of stdout; whatever train.py prints lands on stderr instead.
_REPLY = os.fdopen(os.dup(1), "w", buffering=1)
_REQUESTS = os.fdopen(os.dup(0), "rb", buffering=0)
os.dup2(2, 1)
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402


def reply(**fields):
    _REPLY.write(json.dumps(fields) + "\n")
    _REPLY.flush()


def read_exact(n):
    chunks, got = [], 0
    while got < n:
        chunk = _REQUESTS.read(n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def load_candidate(run_dir, checkpoint):
    import torch
    sys.path.insert(0, run_dir)
    spec = importlib.util.spec_from_file_location("train", os.path.join(run_dir, "train.py"))
    train = importlib.util.module_from_spec(spec)
    sys.modules["train"] = train
    spec.loader.exec_module(train)  # not __main__: defines the model, does not train
    import prepare
    state, config = prepare.load_checkpoint(checkpoint)
    if not hasattr(train, "build_model"):
        raise RuntimeError("train.py defines no build_model(config): the evaluator cannot rebuild the model")
    model = train.build_model(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"the checkpoint does not fit build_model({config}): missing {sorted(missing)[:5]}, "
                           f"unexpected {sorted(unexpected)[:5]}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), device


def bound_file_size(args):
    """No file this process (or anything it starts) writes may outgrow the logits buffer: the buffer
    is a file in the host's /dev/shm, memory outside the sandbox, and a model that grew it (ftruncate,
    a write past its end) held that memory for as long as the worker lived. The hard limit too: no
    user namespace can raise it again. Python ignores SIGXFSZ, so such a write fails with EFBIG."""
    import resource
    size = 2 * args.rows * args.seq_len * args.vocab * (4 if args.dtype == "float32" else 2)
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    limit = size if hard == resource.RLIM_INFINITY else min(size, hard)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def serve(args):
    bound_file_size(args)
    import numpy as np
    import torch
    if torch.cuda.is_available():
        torch.zeros(1, device="cuda")  # the CUDA context, started while training still runs
    reply(ok=True, warm=True)
    line = _REQUESTS.readline()
    if not line or not json.loads(line).get("load"):
        return
    model, device = load_candidate(args.run_dir, args.checkpoint)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    slot_values = args.rows * args.seq_len * args.vocab
    buffer = np.memmap(args.shm, dtype=np.float32 if dtype == torch.float32 else np.int16, mode="r+", shape=(2 * slot_values,))
    if device.type == "cuda":  # page-locked: the copy of the logits runs at the bus's speed
        try:
            cudart = torch.cuda.cudart()
            if int(cudart.cudaHostRegister(buffer.ctypes.data, buffer.nbytes, 0)) != 0:
                cudart.cudaGetLastError()  # not pinnable here: clear the error, copy from pageable memory
        except (AttributeError, RuntimeError):
            pass
    slots = torch.from_numpy(buffer)
    slots = slots.view(torch.bfloat16) if dtype == torch.bfloat16 else slots
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    reply(ok=True, ready=True)
    while True:
        line = _REQUESTS.readline()
        if not line:
            return
        request = json.loads(line)
        slot, n = int(request["slot"]), int(request["rows"])
        raw = read_exact(n * args.seq_len * 4)
        if raw is None or slot not in (0, 1) or not 0 < n <= args.rows:
            reply(error="malformed request")
            return
        x = torch.from_numpy(np.frombuffer(raw, dtype="<i4").astype(np.int64).reshape(n, args.seq_len)).to(device)
        with torch.no_grad(), autocast:
            logits = model(x)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (n, args.seq_len, args.vocab):
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            reply(error=f"model(idx) returned {shape}, expected logits of shape {(n, args.seq_len, args.vocab)}")
            return
        out = slots[slot * slot_values: slot * slot_values + n * args.seq_len * args.vocab]
        out.copy_(logits.detach().to(dtype).reshape(-1))
        reply(ok=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--shm", required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--seq-len", type=int, required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], required=True)
    args = ap.parse_args()
    try:
        serve(args)
    except Exception as e:  # the candidate's code failed: say so to the evaluator, which reports it
        import traceback
        traceback.print_exc()
        reply(error=f"{type(e).__name__}: {e}"[:1000])
        sys.exit(1)


if __name__ == "__main__":
    main()
