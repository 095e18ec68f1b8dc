"""Translate text with a trained run: the Python API behind ``attnmt translate`` and
``attnmt chat``.

    from attnmt import Translator

    translator = Translator.load("runs/quickstart")
    result = translator.translate("the dog sees a cat")          # one Translation
    results = translator.translate(["a cat", "the dog"], beam=5)  # a list, in input order

A :class:`Translator` holds a model (or an ensemble of models), the run's tokenizers and
its ``decode`` settings. Decoding takes one typed :class:`attnmt.config.DecodeOptions`;
:meth:`Translator.options` builds it from the run's settings and keyword overrides, and
:meth:`Translator.translate` also takes the overrides directly (``beam=5, n_best=3,
sample=True, top_p=0.9, ...``). Overrides are validated once, so a typo fails in one line
naming the key.

Decoding goes

    text --encode--> ids --length_batches--> padded groups --search.decode--> Hypotheses
         --decode / to_pieces--> Translation

Sentences of similar length are decoded together (at most ``batch_tokens`` padded source
tokens per group, counted once per row of the beam or the samples: the rows are what take
time and memory)
and the results come back in input order. A source with no tokens (an empty or blank
line) is not decoded: its translation is empty, with score 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch
from torch import Tensor

from attnmt.config import Config, DecodeOptions, decode_options
from attnmt.data.tokenize import Tokenizer, load_tokenizers
from attnmt.device import autocast
from attnmt.errors import UserError
from attnmt.io.checkpoint import WHICH
from attnmt.io.run import Run
from attnmt.models.ensemble import Ensemble
from attnmt.models.interface import Seq2SeqModel
from attnmt.models.modes import evaluating
from attnmt.search.beam import beam_search
from attnmt.search.decode import decode, length_batches
from attnmt.search.ranking import Hypothesis
from attnmt.search.trace import BeamTrace
from attnmt.special import PAD_ID
from attnmt.translate.schema import Translation
from attnmt.translate.words import unknown_units


class Translator:
    """A model (or ensemble), its tokenizers and its decoding settings, ready to translate.

    Args:
        model: a :class:`Seq2Seq` or an :class:`attnmt.models.ensemble.Ensemble`, on
            `device`.
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
        precision: str = "auto",
    ) -> Translator:
        """Load a trained run directory: its model, tokenizers and ``decode`` settings.

        Args:
            run_dir: the run directory (as written by ``attnmt train``).
            ensemble: more run directories whose models are averaged with the first
                (:class:`attnmt.models.ensemble.Ensemble`); their tokenizers must be
                identical.
                Decoding settings and precision come from `run_dir`.
            device: ``auto``, ``cpu``, ``cuda``, ``mps``, ...
            which: ``best``, ``last``, ``averaged``, ``int8`` (``attnmt export --int8``;
                of every run) or a checkpoint path (no ensemble).
            precision: ``auto`` (what training recorded), ``fp32`` or ``bf16``
                (:func:`attnmt.device.loading_precision`).
        """
        if ensemble and which not in WHICH:
            raise UserError(f"a checkpoint path ({which}) cannot name every ensemble member")
        run = Run.load(run_dir, which, device, precision)
        members: list[Seq2SeqModel] = [run.model]
        for other in ensemble:
            _check_same_tokenizers(run_dir, (run.src_tok, run.tgt_tok), other)
            members.append(Run.load(other, which, device, precision).model)
        return cls(_combine(members), run.src_tok, run.tgt_tok, run.config, run.device, run.dtype)

    @classmethod
    def from_run(cls, run: Run) -> Translator:
        """The translator of a loaded :class:`attnmt.io.run.Run`."""
        return cls(run.model, run.src_tok, run.tgt_tok, run.config, run.device, run.dtype)

    # ------------------------------------------------------------------ settings

    @property
    def decode(self) -> DecodeOptions:
        """The run's own decoding settings (its config's ``decode`` section)."""
        return self.config.decode

    def options(self, **overrides: Any) -> DecodeOptions:
        """The run's ``decode`` settings with `overrides` (``beam=5, sample=True, ...``;
        None values are ignored), validated once: an unknown key or a bad value is a
        one-line ConfigError. What the edges (CLI, server, chatbot) call to build the one
        :class:`DecodeOptions` they then pass along."""
        return decode_options(self.config.decode, overrides)

    # ------------------------------------------------------------------ translating

    @overload
    def translate(
        self,
        sources: str,
        options: DecodeOptions | None = None,
        *,
        heads: bool = False,
        **overrides: Any,
    ) -> Translation: ...

    @overload
    def translate(
        self,
        sources: Sequence[str],
        options: DecodeOptions | None = None,
        *,
        heads: bool = False,
        **overrides: Any,
    ) -> list[Translation]: ...

    def translate(
        self,
        sources: str | Sequence[str],
        options: DecodeOptions | None = None,
        *,
        heads: bool = False,
        **overrides: Any,
    ) -> Translation | list[Translation]:
        """Translate one sentence (a str gives a Translation) or many (a list, in input order).

        Args:
            sources: the source text(s), untokenised.
            options: how to decode (default: the run's ``decode`` settings).
            heads: also fill every hypothesis's ``attention_heads`` and, for models with
                self-attention, ``encoder_attention`` and ``decoder_attention``: one more
                teacher-forced pass over the outputs found (``model.attention_maps``).
            **overrides: ``decode`` keys to change for this call, applied over `options`
                once: beam, n_best, alpha, beta, sample, seed, temperature, top_k, top_p,
                max_len, min_len, no_repeat_ngram, batch_tokens, ... (``attnmt config
                --keys``).
        """
        options = decode_options(options or self.config.decode, overrides)
        texts = [sources] if isinstance(sources, str) else list(sources)
        ids = [self.src_tok.encode(text) for text in texts]
        results = self.with_surfaces(self.translate_ids(ids, options, heads=heads), texts)
        return results[0] if isinstance(sources, str) else results

    def with_surfaces(
        self, results: Sequence[Translation], texts: Sequence[str]
    ) -> list[Translation]:
        """`results` with ``src_surface`` filled from their source `texts`, on every
        hypothesis too: what a word read as the unknown piece is shown as. Only a source
        that has the unknown piece is encoded again for it (the rest never read it)."""
        for result, text in zip(results, texts, strict=True):
            pieces = result.src_tokens
            if not unknown_units(pieces, [[i] for i in range(len(pieces))]):
                continue
            surface = self.src_tok.surfaces(text)
            for translation in {id(t): t for t in [result, *result.hypotheses]}.values():
                translation.src_surface = surface
        return list(results)

    def translate_ids(
        self,
        ids: Sequence[Sequence[int]],
        options: DecodeOptions | None = None,
        *,
        heads: bool | Collection[int] = False,
    ) -> list[Translation]:
        """Translate sources given as token ids (one list per sentence, no BOS/EOS), in
        input order: what :meth:`translate` does after tokenizing, and what evaluation
        and the server call on already tokenized sources. `heads` as in
        :meth:`translate`, or the positions in `ids` of the only sentences to fill them for.

        The one place that batches by tokens: sentences of similar length go together, at
        most ``options.sentence_budget()`` padded source tokens per batch."""
        options = options or self.config.decode
        rows_ids = [list(row) for row in ids]
        self._check_lengths(rows_ids)
        results = [self._empty() if not row else None for row in rows_ids]
        real = [i for i, row in enumerate(rows_ids) if row]
        generator = _generator(options.seed, self.device)
        with evaluating(self.model), autocast(self.device, self.dtype):
            lengths = [len(rows_ids[i]) for i in real]
            for group in length_batches(lengths, options.sentence_budget()):
                rows = [real[g] for g in group]
                src, src_lengths = _pad([rows_ids[i] for i in rows], self.device)  # (B, S), (B,)
                nbests = decode(self.model, src, src_lengths, options, generator)
                for i, nbest in zip(rows, nbests, strict=True):
                    wanted = heads if isinstance(heads, bool) else i in heads
                    results[i] = self._translation(rows_ids[i], nbest, wanted)
        return [result for result in results if result is not None]

    def beam_tree(
        self, source: str, options: DecodeOptions | None = None
    ) -> tuple[Translation, BeamTrace]:
        """Beam-search one sentence and record its tree: the translation (with its n-best
        list) and the :class:`BeamTrace` of every candidate weighed, under sentence 0.
        Always a beam search of ``options.beam`` rows: ``options.sample`` is ignored."""
        options = options or self.config.decode
        ids = self.src_tok.encode(source)
        if not ids:
            raise UserError("the source sentence is empty")
        self._check_lengths([ids])
        trace = BeamTrace()
        src, src_lengths = _pad([ids], self.device)  # (1, S), (1,)
        with evaluating(self.model), autocast(self.device, self.dtype):
            nbest = beam_search(self.model, src, src_lengths, options, trace)[0]
        return self._translation(ids, nbest), trace

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
        sentence (one padded batch); unchanged for models that show none."""
        if not self.has_attention:
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
        maps = self.model.attention_maps(src, src_lengths, tgt_in.to(self.device))
        if not maps:
            return translations
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
        """Refuse sources longer than the model can read (``model.max_src_len``: a location
        score or learned positions have one weight row per source position)."""
        limit = self.model.max_src_len
        if limit is None:
            return
        for number, row in enumerate(ids, start=1):
            if len(row) > limit:
                raise UserError(
                    f"source {number} has {len(row)} tokens; this model reads at most {limit} "
                    "(its location score or learned positions have one weight per position)"
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
