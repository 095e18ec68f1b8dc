"""The model interface is all that search, ensembles and the Translator need.

`CopyModel` below is not an RNN and not a Seq2Seq: a hand-written model family that
copies its source, with a hard monotonic "attention" on the source position it copies.
It decodes through greedy search, beam search, sampling, an Ensemble, the Translator
(heads and length limits included) and evaluation, and trains, without any of them
knowing its class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from conftest import settings
from torch import Tensor, nn

from attnmt.config import build_config
from attnmt.data.corpus import CorpusStats, TokenizedCorpus
from attnmt.data.tokenize import WordTokenizer
from attnmt.errors import UserError
from attnmt.evaluate.alignment import forced_attention
from attnmt.evaluate.evaluation import evaluate_corpus
from attnmt.models.ensemble import Ensemble
from attnmt.models.interface import Seq2SeqModel, TrainableModel
from attnmt.models.seq2seq import Seq2Seq
from attnmt.search import beam_search, greedy, sample
from attnmt.special import BOS_ID, EOS_ID, PAD_ID
from attnmt.train.forward import TrainingForward
from attnmt.translate.translator import Translator

VOCAB = 12
CONFIDENCE = 8.0  # logit margin of the token to copy
MAX_SRC_LEN = 6  # what the toy model says it can read


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

    The attention at step t is one-hot on source position min(t, |x| - 1). The decoder
    output o_t is CONFIDENCE times the one-hot of the token to copy, and the output layer
    starts as the identity, so training can move it.
    """

    bos_id, eos_id, pad_id = BOS_ID, EOS_ID, PAD_ID

    def __init__(self) -> None:
        super().__init__()
        self.projection = nn.Linear(VOCAB, VOCAB)
        with torch.no_grad():
            self.projection.weight.copy_(torch.eye(VOCAB))
            self.projection.bias.zero_()

    @property
    def tgt_vocab_size(self) -> int:
        return VOCAB

    @property
    def has_attention(self) -> bool:
        return True

    @property
    def max_src_len(self) -> int | None:
        return MAX_SRC_LEN

    @property
    def output_layer(self) -> nn.Linear:
        return self.projection

    def encode(self, src: Tensor, src_lengths: Tensor) -> Source:
        return Source(src, src_lengths)

    def init_state(self, enc: Source) -> Position:
        return Position(torch.zeros_like(enc.src_lengths))

    def _outputs(self, enc: Source, t: Tensor) -> tuple[Tensor, Tensor]:
        """o_t (B, V) and attention (B, S) for steps t (B,)."""
        last = (enc.src_lengths - 1).clamp(min=0)
        position = torch.minimum(t, last)  # (B,)
        token = enc.src.gather(1, position.unsqueeze(1)).squeeze(1)  # (B,)
        target = torch.where(t < enc.src_lengths, token, torch.full_like(token, EOS_ID))
        output = CONFIDENCE * nn.functional.one_hot(target, VOCAB).float()
        attention = nn.functional.one_hot(position, enc.src.size(1)).float()  # (B, S)
        return output, attention

    def step(
        self, tokens: Tensor, enc: Source, state: Position, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None, Any]:
        output, attention = self._outputs(enc, state.t)
        log_probs = self.projection(output).log_softmax(-1)
        return log_probs, attention if need_weights else None, Position(state.t + 1)

    def decoder_outputs(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        enc = self.encode(src, src_lengths)
        steps = [self._outputs(enc, torch.full_like(src_lengths, t)) for t in range(tgt_in.size(1))]
        output = torch.stack([s[0] for s in steps], 1)  # (B, T, V)
        weights = torch.stack([s[1] for s in steps], 1).unsqueeze(1)  # (B, 1 head, T, S)
        return output, weights if need_weights else None

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        output, weights = self.decoder_outputs(src, src_lengths, tgt_in, need_weights)
        return self.projection(output), None if weights is None else weights[:, 0]

    def attention_maps(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> dict[str, Tensor]:
        _, weights = self.decoder_outputs(src, src_lengths, tgt_in, need_weights=True)
        assert weights is not None
        return {"cross": weights.unsqueeze(1)}  # (B, 1 layer, 1 head, T, S)


def batch() -> tuple[Tensor, Tensor]:
    src = torch.tensor([[4, 5, 6, 7], [8, 9, PAD_ID, PAD_ID], [10, PAD_ID, PAD_ID, PAD_ID]])
    return src, torch.tensor([4, 2, 1])


def copies(results: list[list[Any]]) -> list[list[int]]:
    return [hyps[0].tokens for hyps in results]


EXPECTED = [[4, 5, 6, 7], [8, 9], [10]]


def test_the_toy_model_satisfies_the_protocols() -> None:
    model: TrainableModel = CopyModel()  # mypy checks this assignment against the Protocol
    decoding: Seq2SeqModel = model
    assert decoding.tgt_vocab_size == VOCAB and not isinstance(model, Seq2Seq)


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
    with_heads = translator.translate("a b", heads=True)
    assert with_heads.attention_heads is not None
    assert with_heads.attention_heads.shape == (1, 1, 3, 2)  # layers, heads, outputs + EOS, S
    with pytest.raises(UserError, match=f"at most {MAX_SRC_LEN}"):
        translator.translate("a b c d e f g")


def test_evaluation_and_forced_attention_use_only_the_interface() -> None:
    words = ["a", "b", "c", "d", "e", "f", "g", "h"]
    tokenizer = WordTokenizer.build([" ".join(words)], VOCAB)
    config = build_config([("test", {"decode": {"beam": 2, "min_len": 0}})])
    translator = Translator(CopyModel(), tokenizer, tokenizer, config)
    texts = ["a b c", "h g", "d"]
    ids = [tokenizer.encode(t) for t in texts]
    offsets = np.cumsum([0] + [len(row) for row in ids]).astype(np.int64)  # (N + 1,)
    tokens = np.array([i for row in ids for i in row], dtype=np.int32)
    corpus = TokenizedCorpus(tokens, offsets, tokens, offsets, CorpusStats(len(texts), 0, 0))
    evaluation = evaluate_corpus(translator, corpus, texts)
    assert evaluation.hypotheses == texts and evaluation.scores["exact"] == 1.0
    assert 1.0 <= evaluation.scores["ppl"] < 1.1  # the copy is near certain
    attention = forced_attention(translator.model, corpus, 100, torch.device("cpu"))
    assert attention is not None
    for weights, text in zip(attention, texts, strict=True):  # one-hot on the copied word
        length = len(text.split())
        assert weights.shape == (length + 1, length)
        assert (weights.argmax(1)[:length] == np.arange(length)).all()


def test_the_copy_model_trains_one_step() -> None:
    """Training needs only the TrainableModel interface: the chunked loss, the plain loss
    and scheduled sampling all run on the copy model, and one step lowers the loss."""
    model = CopyModel()
    src, lengths = batch()
    tgt_out = torch.tensor(
        [[4, 5, 6, 7, EOS_ID], [8, 9, EOS_ID, PAD_ID, PAD_ID], [10, EOS_ID] + [PAD_ID] * 3]
    )
    tgt_in = torch.cat([torch.full((3, 1), BOS_ID), tgt_out[:, :-1].clamp(min=0)], 1)
    tgt_in = tgt_in.masked_fill(tgt_out == PAD_ID, PAD_ID)
    with torch.no_grad():  # start from a model that copies less surely
        model.projection.weight.mul_(0.1)
    for forward in (
        TrainingForward(model, 1.0, 0.0),
        TrainingForward(model, 1.0, 0.0, chunked=False),
        TrainingForward(model, 0.5, 0.0),
    ):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        before = forward(src, lengths, tgt_in, tgt_out)
        optimizer.zero_grad()
        before.backward()
        optimizer.step()
        with torch.no_grad():
            after = forward(src, lengths, tgt_in, tgt_out)
        assert after < before
