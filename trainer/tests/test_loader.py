"""BOS-aligned packing and the training loader."""

import numpy as np
import torch

BOS = 1


def synthetic_docs(lengths):
    tokens, starts = [], []
    for i, n in enumerate(lengths):
        starts.append(len(tokens))
        tokens += [BOS] + [2 + (i * 7 + j) % 50 for j in range(n - 1)]
    return np.asarray(tokens, dtype=np.uint16), np.asarray(starts, dtype=np.int64)


def test_every_packed_row_starts_with_bos_and_is_full():
    import prepare
    tokens, starts = synthetic_docs([3, 40, 7, 100, 1, 15, 64, 9])
    rows = list(prepare.packed_rows(tokens, starts, range(len(starts)), 17, BOS))
    assert rows and all(len(r) == 17 and r[0] == BOS for r in rows)


def test_packing_loses_no_tokens_and_adds_only_bos():
    import prepare
    tokens, starts = synthetic_docs([3, 40, 7, 100, 1, 15, 64, 9])
    rows = list(prepare.packed_rows(tokens, starts, range(len(starts)), 17, BOS))
    packed = np.concatenate(rows)
    # Removing every BOS from both leaves the same text, except the tail that did not fill a row.
    text, got = tokens[tokens != BOS], packed[packed != BOS]
    assert np.array_equal(text[:len(got)], got)
    assert len(text) - len(got) < 17


def test_loader_yields_shifted_batches_of_the_right_shape(small_data):
    import prepare
    x, y = next(prepare.make_loader(small_data, 4, "cpu", seq_len=32, seed=1))
    assert x.shape == y.shape == (4, 32)
    assert x.dtype == torch.int64
    assert (x[:, 0] == small_data.bos_id).all()
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_the_seed_decides_the_data_order(small_data):
    import prepare
    a = next(prepare.make_loader(small_data, 4, "cpu", seq_len=32, seed=1))[0]
    b = next(prepare.make_loader(small_data, 4, "cpu", seq_len=32, seed=1))[0]
    c = next(prepare.make_loader(small_data, 4, "cpu", seq_len=32, seed=2))[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
