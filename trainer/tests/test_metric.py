"""evaluate_bpb on a case computable by hand."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F


class UniformModel(nn.Module):
    """Predicts every token with probability 1/V: each target costs ln V nats."""

    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size = vocab_size
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x, y, reduction="mean"):
        logits = torch.zeros(*y.shape, self.vocab_size) + self.dummy
        return F.cross_entropy(logits.view(-1, self.vocab_size), y.reshape(-1), reduction=reduction).view(y.shape)


@pytest.mark.parametrize("batch_size", [16, 7])  # 7 does not divide the row count: the padded path
def test_uniform_model_scores_log2_vocab_times_tokens_per_byte(small_data, batch_size):
    import prepare
    rows = list(prepare.packed_rows(small_data.tokens("val"), small_data.doc_starts("val"),
                                    range(len(small_data.doc_starts("val"))), prepare.SEQ_LEN + 1,
                                    small_data.bos_id))[:prepare.EVAL_TOKENS // prepare.SEQ_LEN]
    targets = np.stack(rows)[:, 1:]
    nbytes = small_data.token_bytes[targets]
    counted = int((nbytes > 0).sum())
    expected = math.log2(small_data.vocab_size) * counted / int(nbytes.sum())
    got = prepare.evaluate_bpb(UniformModel(small_data.vocab_size), small_data, batch_size)
    assert got == pytest.approx(expected, rel=1e-6)
    assert counted < targets.size  # some targets are BOS and were left out


def test_evaluation_uses_the_fixed_number_of_eval_tokens(small_data):
    import prepare
    seen = []

    class Recorder(UniformModel):
        def forward(self, x, y, reduction="mean"):
            seen.append(tuple(y.shape))
            return super().forward(x, y, reduction)

    prepare.evaluate_bpb(Recorder(small_data.vocab_size), small_data, 32)
    assert sum(b for b, _ in seen) == prepare.EVAL_TOKENS // prepare.SEQ_LEN
    assert all(t == prepare.SEQ_LEN for _, t in seen)
