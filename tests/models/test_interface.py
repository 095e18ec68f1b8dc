"""The model interface is all that search, ensembles and the Translator need.

`CopyModel` below is not an RNN and not a Seq2Seq: a hand-written model family that
copies its source, with a hard monotonic "attention" on the source position it copies.
It decodes through greedy search, beam search, an Ensemble and the Translator without
any of them knowing its class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch
from conftest import settings
from torch import Tensor, nn

from attnmt.config import build_config
from attnmt.data.tokenize import WordTokenizer
from attnmt.models.ensemble import Ensemble
from attnmt.models.interface import Seq2SeqModel
from attnmt.search import beam_search, greedy, sample
from attnmt.special import BOS_ID, EOS_ID, PAD_ID
from attnmt.translate.translator import Translator

VOCAB = 12
CONFIDENCE = 8.0  # logit margin of the token to copy


@dataclass
class Source:
    """The copy model's encoder output: the source ids themselves."""

    src: Tensor  # (B, S)
    src_lengths: Tensor  # (B,)

    @property
    def src_mask(self) -> Tensor:
        positions = torch.arange(self.src.size(1), device=self.src.device)
        return positions.unsqueeze(0) < self.src_lengths.unsqueeze(1)  # (B, S)

    def index_select(self, index: Tensor) -> Source:
        return Source(self.src.index_select(0, index), self.src_lengths.index_select(0, index))


@dataclass
class Position:
    """The copy model's decoder state: which source position comes next."""

    t: Tensor  # (B,)

    def index_select(self, index: Tensor) -> Position:
        return Position(self.t.index_select(0, index))


class CopyModel(nn.Module):
    """p(y_t = x_t) high, then p(EOS) high after the last source token.

    The attention at step t is one-hot on source position min(t, |x| - 1).
    """

    bos_id, eos_id, pad_id = BOS_ID, EOS_ID, PAD_ID

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(VOCAB))  # an nn.Module with one parameter

    @property
    def tgt_vocab_size(self) -> int:
        return VOCAB

    @property
    def has_attention(self) -> bool:
        return True

    def encode(self, src: Tensor, src_lengths: Tensor) -> Source:
        return Source(src, src_lengths)

    def init_state(self, enc: Source) -> Position:
        return Position(torch.zeros_like(enc.src_lengths))

    def _logits(self, enc: Source, t: Tensor) -> tuple[Tensor, Tensor]:
        """logits (B, V) and attention (B, S) for steps t (B,)."""
        last = (enc.src_lengths - 1).clamp(min=0)
        position = torch.minimum(t, last)  # (B,)
        token = enc.src.gather(1, position.unsqueeze(1)).squeeze(1)  # (B,)
        target = torch.where(t < enc.src_lengths, token, torch.full_like(token, EOS_ID))
        logits = self.bias.expand(len(t), VOCAB) + CONFIDENCE * nn.functional.one_hot(target, VOCAB)
        attention = nn.functional.one_hot(position, enc.src.size(1)).float()  # (B, S)
        return logits, attention

    def step(self, tokens: Tensor, enc: Source, state: Position) -> tuple[Tensor, Tensor, Any]:
        logits, attention = self._logits(enc, state.t)
        return logits.log_softmax(-1), attention, Position(state.t + 1)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor]:
        enc = self.encode(src, src_lengths)
        steps = [self._logits(enc, torch.full_like(src_lengths, t)) for t in range(tgt_in.size(1))]
        return torch.stack([s[0] for s in steps], 1), torch.stack([s[1] for s in steps], 1)


def batch() -> tuple[Tensor, Tensor]:
    src = torch.tensor([[4, 5, 6, 7], [8, 9, PAD_ID, PAD_ID], [10, PAD_ID, PAD_ID, PAD_ID]])
    return src, torch.tensor([4, 2, 1])


def copies(results: list[list[Any]]) -> list[list[int]]:
    return [hyps[0].tokens for hyps in results]


EXPECTED = [[4, 5, 6, 7], [8, 9], [10]]


def test_the_toy_model_satisfies_the_protocol() -> None:
    model: Seq2SeqModel = CopyModel()  # mypy checks this assignment against the Protocol
    assert model.tgt_vocab_size == VOCAB


@pytest.mark.parametrize(
    "search",
    [
        lambda m, s, l: greedy(m, s, l, settings(max_len=10)),
        lambda m, s, l: beam_search(m, s, l, settings(beam=4, n_best=2, max_len=10)),
        lambda m, s, l: sample(m, s, l, settings(max_len=10, top_k=1), torch.Generator()),
    ],
    ids=["greedy", "beam", "sample-top1"],
)
def test_every_search_decodes_a_non_rnn_model(search: Any) -> None:
    src, lengths = batch()
    results = search(CopyModel(), src, lengths)
    assert copies(results) == EXPECTED
    for hyps, length in zip(results, lengths.tolist(), strict=True):
        attention = hyps[0].attention  # (T + 1, S_real): one-hot on the copied position
        assert attention.shape == (length + 1, length)
        assert torch.equal(attention.argmax(1)[:length], torch.arange(length))


def test_an_ensemble_of_non_rnn_models_decodes_the_same() -> None:
    src, lengths = batch()
    ensemble = Ensemble([CopyModel(), CopyModel()])
    assert copies(beam_search(ensemble, src, lengths, settings(beam=3, max_len=10))) == EXPECTED
    logits, attention = ensemble(src, lengths, torch.full((3, 5), BOS_ID))
    assert logits.shape == (3, 5, VOCAB) and attention is not None


def test_the_translator_serves_a_non_rnn_model() -> None:
    words = ["a", "b", "c", "d", "e", "f", "g", "h"]
    tokenizer = WordTokenizer.build([" ".join(words)], VOCAB)
    config = build_config([("test", {"decode": {"beam": 3, "min_len": 0}})])
    translator = Translator(CopyModel(), tokenizer, tokenizer, config)
    results = translator.translate(["a b c", "h", ""], n_best=2)
    assert [r.text for r in results] == ["a b c", "h", ""]
    assert results[0].attention is not None and results[0].attention.shape == (4, 3)
    assert len(results[0].hypotheses) == 2
