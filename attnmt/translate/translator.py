"""Translate text with a trained run: the Python API behind ``attnmt translate`` and
``attnmt chat``.

    from attnmt import Translator

    translator = Translator.load("runs/quickstart")
    result = translator.translate("the dog sees a cat")          # one Translation
    results = translator.translate(["a cat", "the dog"], beam=5)  # a list, in input order

A :class:`Translator` holds a model (or an ensemble of models), the run's tokenizers and
its ``decode`` settings. Each call of :meth:`Translator.translate` may override any
``decode`` key by keyword (``beam=5, n_best=3, sample=True, top_p=0.9, ...``); the
overrides are validated like a config, so a typo fails in one line naming the key.

Decoding goes

    text --encode--> ids --length_batches--> padded groups --search.decode--> Hypotheses
         --decode / to_pieces--> Translation

Sentences of similar length are decoded together (at most ``batch_tokens`` padded source
tokens per group, counted once per beam: the beam's rows are what take time and memory)
and the results come back in input order. A source with no tokens (an empty or blank
line) is not decoded: its translation is empty, with score 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch
from torch import Tensor

from attnmt.config import Config, DecodeConfig, build_config
from attnmt.data.tokenize import Tokenizer, load_tokenizers, merge_pieces
from attnmt.device import autocast
from attnmt.errors import UserError
from attnmt.io.checkpoint import WHICH
from attnmt.io.run import Run
from attnmt.models.ensemble import Ensemble
from attnmt.models.interface import Seq2SeqModel
from attnmt.nn.positions import MAX_LEARNED_POSITIONS
from attnmt.search.decode import decode, length_batches
from attnmt.search.ranking import Hypothesis
from attnmt.special import PAD_ID
from attnmt.translate import schema
from attnmt.translate.words import merge_labels, merge_stack, word_attention


@dataclass(eq=False)  # compared by identity: numpy arrays have no single truth value
class Translation:
    """One translated sentence: the best hypothesis, and the n-best list it heads."""

    text: str  # the detokenised output
    tokens: list[str]  # output pieces for display (a piece that starts a word has "▁")
    src_tokens: list[str]  # source pieces for display
    score: float  # log p(tokens + EOS | source) under the model, no penalties
    rank_score: float  # what search ranked by: score / lp(Y) + cp(X; Y)
    attention: np.ndarray | None = field(repr=False)
    """(len(tokens) + 1, len(src_tokens)): one row per output piece and one for EOS, each a
    distribution over the source pieces; None for a model without attention."""
    hypotheses: list[Translation] = field(default_factory=list, repr=False)
    """The n-best list, best first; the first is this translation again. The entries have no
    hypotheses of their own."""
    attention_heads: np.ndarray | None = field(default=None, repr=False)
    """(layers, heads, len(tokens) + 1, len(src_tokens)): the cross-attention of every
    decoder layer and head (one layer for the RNN family), teacher-forced on this output.
    `attention` is the mean over the heads of the last layer. Filled only when asked
    (``translate(..., heads=True)``); None otherwise, without attention, or for an
    ensemble."""
    encoder_attention: np.ndarray | None = field(default=None, repr=False)
    """(layers, heads, len(src_tokens), len(src_tokens)): source self-attention, row i
    attending over the source; with ``heads=True``, for models that have it."""
    decoder_attention: np.ndarray | None = field(default=None, repr=False)
    """(layers, heads, len(tokens) + 1, len(tokens) + 1): causal target self-attention; row
    t is the step that outputs token t (the last: EOS), column j the decoder input j
    ("<s>", then the tokens). With ``heads=True``, for models that have it."""

    def words(self) -> tuple[list[str], list[str]]:
        """(source words, output words): the pieces joined into words."""
        return (
            merge_labels(self.src_tokens, merge_pieces(self.src_tokens)),
            merge_labels(self.tokens, merge_pieces(self.tokens)),
        )

    def word_attention(self) -> tuple[list[str], list[str], np.ndarray]:
        """(source words, target words + "</s>", merged weights): the piece-level attention
        merged into words by :func:`attnmt.study.word_attention`, with
        ``tokenize.merge_pieces`` finding the words (source columns summed, target rows
        averaged, so each row stays a distribution)."""
        if self.attention is None:
            raise UserError("this model has no attention to merge")
        if not self.src_tokens:  # an empty source: only the EOS row, with no columns
            return [], ["</s>"], np.zeros((1, 0))
        return word_attention(self.src_tokens, self.tokens, self.attention, merge_pieces)

    def word_heads(self) -> np.ndarray | None:
        """``attention_heads`` merged into words head by head, like :meth:`word_attention`:
        (layers, heads, words + 1, source words); None when the heads were not asked for."""
        if self.attention_heads is None:
            return None
        tgt_groups = [*merge_pieces(self.tokens), [len(self.tokens)]]  # + the EOS row
        return merge_stack(
            np.asarray(self.attention_heads), merge_pieces(self.src_tokens), tgt_groups
        )

    def to_dict(self, units: str = "pieces", attention: bool = True) -> dict[str, Any]:
        """The one JSON record of this translation (``attnmt translate --format json`` and
        ``attnmt serve``): see :mod:`attnmt.translate.schema`. `units`: pieces or words."""
        return schema.to_dict(self, units, attention)


class Translator:
    """A model (or ensemble), its tokenizers and its decoding settings, ready to translate.

    Args:
        model: a :class:`Seq2Seq` or an :class:`attnmt.search.Ensemble`, on `device`.
        src_tok, tgt_tok: the tokenizers the model was trained with.
        config: the run's resolved config; ``config.decode`` gives the default settings.
        device: where the model lives.
        dtype: the autocast dtype (None: fp32), see :func:`attnmt.device.resolve_precision`.
    """

    def __init__(
        self,
        model: Seq2SeqModel,
        src_tok: Tokenizer,
        tgt_tok: Tokenizer,
        config: Config,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model
        self.src_tok, self.tgt_tok = src_tok, tgt_tok
        self.config = config
        self.device = device or torch.device("cpu")
        self.dtype = dtype
        self.has_attention = model.has_attention

    @classmethod
    def load(
        cls,
        run_dir: str | Path,
        *,
        ensemble: Sequence[str | Path] = (),
        device: str = "auto",
        which: str = "best",
    ) -> Translator:
        """Load a trained run directory: its model, tokenizers and ``decode`` settings.

        Args:
            run_dir: the run directory (as written by ``attnmt train``).
            ensemble: more run directories whose models are averaged with the first
                (:class:`attnmt.search.Ensemble`); their tokenizers must be identical.
                Decoding settings and precision come from `run_dir`.
            device: ``auto``, ``cpu``, ``cuda``, ``mps``, ...
            which: ``best``, ``last``, ``averaged`` (of every run) or a checkpoint path
                (no ensemble).
        """
        if ensemble and which not in WHICH:
            raise UserError(f"a checkpoint path ({which}) cannot name every ensemble member")
        run = Run.load(run_dir, which, device)
        members: list[Seq2SeqModel] = [run.model]
        for other in ensemble:
            _check_same_tokenizers(run_dir, (run.src_tok, run.tgt_tok), other)
            members.append(Run.load(other, which, device).model)
        return cls(_combine(members), run.src_tok, run.tgt_tok, run.config, run.device, run.dtype)

    @classmethod
    def from_run(cls, run: Run) -> Translator:
        """The translator of a loaded :class:`attnmt.io.run.Run`."""
        return cls(run.model, run.src_tok, run.tgt_tok, run.config, run.device, run.dtype)

    # ------------------------------------------------------------------ settings

    def decode_config(self, **overrides: Any) -> DecodeConfig:
        """The run's ``decode`` settings with `overrides` (None values are ignored),
        validated: an unknown key or a bad value is a one-line ConfigError."""
        given = {key: value for key, value in overrides.items() if value is not None}
        config = build_config([("decoding options", {"decode": given})], base=self.config)
        decoding = config.decode
        if not decoding.sample and decoding.n_best > decoding.beam:
            raise UserError(f"n_best ({decoding.n_best}) must be at most beam ({decoding.beam})")
        return decoding

    # ------------------------------------------------------------------ translating

    @overload
    def translate(
        self, sources: str, *, seed: int | None = None, heads: bool = False, **options: Any
    ) -> Translation: ...

    @overload
    def translate(
        self,
        sources: Sequence[str],
        *,
        seed: int | None = None,
        heads: bool = False,
        **options: Any,
    ) -> list[Translation]: ...

    def translate(
        self,
        sources: str | Sequence[str],
        *,
        seed: int | None = None,
        heads: bool = False,
        **options: Any,
    ) -> Translation | list[Translation]:
        """Translate one sentence (a str gives a Translation) or many (a list, in input order).

        Args:
            sources: the source text(s), untokenised.
            seed: seeds sampling (``sample=True``), so the same call draws the same outputs.
            heads: also fill every hypothesis's ``attention_heads`` and, for models with
                self-attention, ``encoder_attention`` and ``decoder_attention``: one more
                teacher-forced pass over the outputs found (``model.attention_maps``).
            **options: ``decode`` keys to override for this call: beam, n_best, alpha,
                beta, sample, temperature, top_k, top_p, max_len, min_len,
                no_repeat_ngram, batch_tokens, ... (see ``attnmt config --keys``).
        """
        if isinstance(sources, str):
            return self.translate([sources], seed=seed, heads=heads, **options)[0]
        ids = [self.src_tok.encode(text) for text in sources]
        return self.translate_ids(ids, seed=seed, heads=heads, **options)

    def translate_ids(
        self,
        ids: Sequence[Sequence[int]],
        *,
        seed: int | None = None,
        heads: bool = False,
        **options: Any,
    ) -> list[Translation]:
        """Translate sources given as token ids (one list per sentence, no BOS/EOS), in
        input order: what :meth:`translate` does after tokenizing, and what evaluation
        calls on an already tokenized corpus."""
        config = self.decode_config(**options)
        rows_ids = [list(row) for row in ids]
        self._check_lengths(rows_ids)
        results = [self._empty() if not row else None for row in rows_ids]
        real = [i for i, row in enumerate(rows_ids) if row]
        generator = _generator(seed, self.device)
        with torch.inference_mode(), autocast(self.device, self.dtype):
            lengths, budget = [len(rows_ids[i]) for i in real], _row_budget(config)
            for group in length_batches(lengths, budget):
                rows = [real[g] for g in group]
                src, src_lengths = _pad([rows_ids[i] for i in rows], self.device)  # (B, S), (B,)
                nbests = decode(self.model, src, src_lengths, config, generator)
                for i, nbest in zip(rows, nbests, strict=True):
                    results[i] = self._translation(rows_ids[i], nbest, heads)
        return [result for result in results if result is not None]

    def _translation(
        self, src_ids: list[int], nbest: list[Hypothesis], heads: bool = False
    ) -> Translation:
        """The best hypothesis as a Translation, with the n-best list attached."""
        src_tokens = self.src_tok.to_pieces(src_ids)
        hypotheses = [self._hypothesis(src_tokens, hypothesis) for hypothesis in nbest]
        if heads:
            hypotheses = self._with_heads(src_ids, nbest, hypotheses)
        return dataclasses.replace(hypotheses[0], hypotheses=hypotheses)

    def _with_heads(
        self, src_ids: list[int], nbest: list[Hypothesis], translations: list[Translation]
    ) -> list[Translation]:
        """Every head of every attention layer, teacher-forced on each hypothesis of one
        sentence (one padded batch); unchanged for models without ``attention_maps``."""
        attention_maps = getattr(self.model, "attention_maps", None)
        if attention_maps is None or not self.has_attention:
            return translations
        count, s_len = len(nbest), len(src_ids)
        longest = max(len(h.tokens) for h in nbest)
        src = torch.tensor([src_ids] * count, device=self.device)  # (n, S)
        src_lengths = torch.full((count,), s_len, device=self.device)  # (n,)
        tgt_in = torch.full((count, longest + 1), PAD_ID, dtype=torch.long)  # (n, T + 1)
        for k, hypothesis in enumerate(nbest):
            tgt_in[k, : len(hypothesis.tokens) + 1] = torch.tensor(
                [self.model.bos_id, *hypothesis.tokens]
            )
        maps = attention_maps(src, src_lengths, tgt_in.to(self.device))
        arrays = {kind: weights.float().cpu().numpy() for kind, weights in maps.items()}
        filled = []
        for k, (hypothesis, translation) in enumerate(zip(nbest, translations, strict=True)):
            rows = len(hypothesis.tokens) + 1  # the outputs and EOS
            parts: dict[str, Any] = {}
            if "cross" in arrays:
                parts["attention_heads"] = arrays["cross"][k, :, :, :rows, :s_len]
            if "encoder" in arrays:
                parts["encoder_attention"] = arrays["encoder"][k, :, :, :s_len, :s_len]
            if "decoder" in arrays:
                parts["decoder_attention"] = arrays["decoder"][k, :, :, :rows, :rows]
            filled.append(dataclasses.replace(translation, **parts))
        return filled

    def _hypothesis(self, src_tokens: list[str], hypothesis: Hypothesis) -> Translation:
        attention = hypothesis.attention
        return Translation(
            text=self.tgt_tok.decode(hypothesis.tokens),
            tokens=self.tgt_tok.to_pieces(hypothesis.tokens),
            src_tokens=src_tokens,
            score=float(hypothesis.score),
            rank_score=float(hypothesis.rank_score),
            attention=None if attention is None else attention.float().cpu().numpy(),
        )

    def _empty(self) -> Translation:
        """The translation of a source without tokens: empty, and certain."""
        attention = np.zeros((1, 0), dtype=np.float32) if self.has_attention else None
        empty = Translation("", [], [], 0.0, 0.0, attention)
        return dataclasses.replace(empty, hypotheses=[empty])

    def _check_lengths(self, ids: list[list[int]]) -> None:
        """The location score and learned positions have one weight row per source
        position: refuse longer inputs."""
        model = self.config.model
        if model.arch == "transformer" and model.positions == "learned":
            for number, row in enumerate(ids, start=1):
                if len(row) > MAX_LEARNED_POSITIONS:
                    raise UserError(
                        f"source {number} has {len(row)} tokens; this model (learned "
                        f"positions) reads at most {MAX_LEARNED_POSITIONS}"
                    )
        attention = self.config.model.attention
        if attention.score != "location" or self.config.model.decoder == "none":
            return
        for number, row in enumerate(ids, start=1):
            if len(row) > attention.max_src_len:
                raise UserError(
                    f"source {number} has {len(row)} tokens; this model (location score) "
                    f"reads at most model.attention.max_src_len={attention.max_src_len}"
                )


# ---------------------------------------------------------------------------
# Helpers


def _combine(models: list[Seq2SeqModel]) -> Seq2SeqModel:
    """One model as itself; several as an :class:`Ensemble` (averaged probabilities)."""
    if len(models) == 1:
        return models[0]
    try:
        return Ensemble(models).eval()
    except ValueError as err:
        raise UserError(f"cannot ensemble these models: {err}") from None


def _check_same_tokenizers(
    first: str | Path, tokenizers: tuple[Tokenizer, Tokenizer], other: str | Path
) -> None:
    """Ensemble members must tokenize identically, or their ids would mean different things."""
    theirs = load_tokenizers(Path(other) / "tokenizer")
    if [t.fingerprint() for t in theirs] != [t.fingerprint() for t in tokenizers]:
        raise UserError(
            f"cannot ensemble {other} with {first}: their tokenizers differ "
            "(ensemble members must share identical vocabularies)"
        )


def _pad(rows: list[list[int]], device: torch.device) -> tuple[Tensor, Tensor]:
    """Token id lists -> padded src (B, S) and src_lengths (B,), on `device`."""
    src_lengths = torch.tensor([len(row) for row in rows])  # (B,)
    src = torch.full((len(rows), int(src_lengths.max())), PAD_ID, dtype=torch.long)  # (B, S)
    for b, row in enumerate(rows):
        src[b, : len(row)] = torch.tensor(row)
    return src.to(device), src_lengths.to(device)


def _generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    """A seeded generator for sampling, or None to use torch's global one."""
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(seed)


def _row_budget(config: DecodeConfig) -> int:
    """Source tokens per decoding batch: ``batch_tokens`` over the beam size, so that a
    batch holds about ``batch_tokens`` source tokens of beam rows whatever the beam. One
    batch of 8,000 source tokens at beam 5 (some 2,600 rows on Multi30k) decoded 15%
    slower and took 180 MB more than batches of 1,600 (BENCHMARKS.md)."""
    return max(1, config.batch_tokens // config.beam)
