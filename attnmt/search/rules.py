"""The rules every search obeys: length limits and the tokens forbidden at each step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from attnmt.search.ranking import NEG_INF
from attnmt.special import UNK_ID

if TYPE_CHECKING:
    from attnmt.config import DecodeOptions
    from attnmt.models.interface import Seq2SeqModel


def length_bounds(src_lengths: Tensor, limits: DecodeOptions) -> tuple[Tensor, Tensor]:
    """Shortest and longest allowed output per sentence, each (B,) long:

    longest  = min(max_len, int(max_len_ratio · |x|) + 5)
    shortest = min(max(min_len, ceil(min_len_ratio · |x|)), longest)
    """
    length = src_lengths.double()
    longest = torch.clamp((limits.max_len_ratio * length).floor() + 5, max=limits.max_len)
    shortest = torch.clamp((limits.min_len_ratio * length).ceil(), min=limits.min_len)
    return torch.minimum(shortest, longest).long(), longest.long()


def repeated_ngrams(history: Tensor, n: int, vocab: int) -> Tensor:
    """history (R, t) -> (R, V) bool: True for each token that would complete an n-gram
    already in its row (the row's last n-1 tokens followed by that token)."""
    rows, length = history.shape
    if n <= 0 or length < n:
        return torch.zeros(rows, vocab, dtype=torch.bool, device=history.device)
    banned = torch.zeros(rows, vocab, device=history.device)
    ngrams = history.unfold(1, n, 1)  # (R, t-n+1, n)
    prefix = history[:, length - n + 1 :]  # (R, n-1)
    same_prefix = (ngrams[:, :, :-1] == prefix.unsqueeze(1)).all(-1)  # (R, t-n+1)
    banned.scatter_add_(1, ngrams[:, :, -1], same_prefix.float())
    return banned > 0


def constrain(
    log_probs: Tensor,
    history: Tensor,
    shortest: Tensor,
    longest: Tensor,
    special: tuple[int, int, int],
    no_repeat_ngram: int,
    banned: tuple[int, ...] = (),
) -> Tensor:
    """Set to -inf every token the rules forbid as the next output of each row.

    log_probs (R, V); history (R, t) the outputs so far; shortest, longest (R,) length
    bounds; special = (eos_id, bos_id, pad_id). PAD, BOS and the `banned` tokens (the
    unknown piece, unless decode.allow_unk) are never output; EOS is blocked while
    t < shortest; at t = longest only EOS is allowed. If the rules leave a row nothing
    (repeats forbid every token), EOS is allowed, so each row can finish.

    Only the columns and rows a rule touches are written, in place when `log_probs` is
    contiguous; a full (R, V) mask is built only for no-repeat-ngram blocking.
    """
    eos_id, bos_id, pad_id = special
    t = history.size(1)
    log_probs = log_probs.contiguous()  # a fresh model output is written in place
    eos = log_probs[:, eos_id].clone()  # (R,): EOS follows its own rules below
    if no_repeat_ngram > 0:
        log_probs.masked_fill_(
            repeated_ngrams(history, no_repeat_ngram, log_probs.size(1)), NEG_INF
        )
    log_probs[:, [bos_id, pad_id, eos_id, *banned]] = NEG_INF
    at_longest = t >= longest  # (R,)
    if bool(at_longest.any()):
        log_probs[at_longest] = NEG_INF
    allow_eos = at_longest | (t >= shortest)
    if no_repeat_ngram > 0:  # stuck: no token left, so EOS is allowed after all
        allow_eos |= torch.isneginf(log_probs).all(1)
    log_probs[:, eos_id] = eos.masked_fill(~allow_eos, NEG_INF)
    return log_probs


@dataclass
class Rules:
    """The decode settings' length rules as tensors: bounds per input sentence, applied
    to any rows."""

    shortest: Tensor  # (B,) long
    longest: Tensor  # (B,) long
    special: tuple[int, int, int]  # eos, bos, pad
    no_repeat_ngram: int
    banned: tuple[int, ...] = ()  # never output: (UNK_ID,) unless decode.allow_unk

    @classmethod
    def of(cls, model: Seq2SeqModel, src_lengths: Tensor, limits: DecodeOptions) -> Rules:
        shortest, longest = length_bounds(src_lengths, limits)
        special = (model.eos_id, model.bos_id, model.pad_id)
        banned = () if limits.allow_unk else (UNK_ID,)
        return cls(shortest, longest, special, limits.no_repeat_ngram, banned)

    def apply(self, log_probs: Tensor, sentence: Tensor, history: Tensor) -> Tensor:
        """`constrain` the log-probs (R, V) of rows from input sentences `sentence` (R,)
        whose outputs so far are `history` (R, t)."""
        return constrain(
            log_probs,
            history,
            self.shortest[sentence],
            self.longest[sentence],
            self.special,
            self.no_repeat_ngram,
            self.banned,
        )
