"""The one evaluation path: a model and a split in; translations, scores and attention out.

    evaluation = evaluate_split(run, split)                   # a loaded run and a test set
    evaluation = evaluate_corpus(translator, corpus, refs)    # during training, on dev
    evaluation = evaluate_replies(responder, corpus, sources, refs)   # a dialogue run

``attnmt evaluate``, the quickstart, ``attnmt compare`` and validation during training
all call these. Decoding goes through :meth:`Translator.translate_ids`, so every caller
gets :class:`Translation` objects (text, n-best, attention, word merging) from the same
code that serves ``attnmt translate``; a dialogue run's replies go through the
:class:`Responder` that answers in ``attnmt chat`` (reranked when it has a backward
model), so evaluation measures what the chatbot says. Both are scored the same way.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from attnmt.config import DecodeOptions, SplitPaths
from attnmt.data.corpus import TokenizedCorpus, load_corpus
from attnmt.data.text import read_parallel
from attnmt.evaluate.metrics import corpus_loss, corpus_metrics, exact_match, word_perplexity
from attnmt.io.run import Run
from attnmt.translate.chatbot import ChatReply, Responder
from attnmt.translate.schema import Translation
from attnmt.translate.translator import Translator


@dataclass
class Evaluation:
    """What one evaluation produced, in corpus order."""

    translations: list[Translation]  # the best output of each source, with its n-best list
    references: list[str]
    scores: dict[str, float] = field(default_factory=dict)
    """bleu, chrf, exact (share of outputs equal to their reference), and with the loss
    also loss (NLL per target token), ppl and word_ppl (per word, see
    :func:`attnmt.evaluate.metrics.word_perplexity`)."""
    decode_seconds: float = 0.0  # wall time of decoding alone
    replies: list[ChatReply] = field(default_factory=list)
    """A dialogue run's answers (:func:`evaluate_replies`): each reply's candidates with
    their scores; empty for translations."""

    @property
    def hypotheses(self) -> list[str]:
        return [translation.text for translation in self.translations]


def evaluate_corpus(
    translator: Translator,
    corpus: TokenizedCorpus,
    references: list[str],
    *,
    options: DecodeOptions | None = None,
    limit: int | None = None,
    loss: bool = True,
    heads: bool | Collection[int] = False,
) -> Evaluation:
    """Decode the sources of `corpus` (the first `limit`) with `options` (default: the
    run's ``decode`` settings) and score them against `references`; with `loss`, also the
    teacher-forced loss over the whole corpus. `heads`: every attention head of every
    translation, or of the sentences at these positions (:meth:`Translator.translate_ids`)."""
    count = len(corpus) if limit is None else min(limit, len(corpus))
    start = time.perf_counter()
    sources = [corpus.src(i).tolist() for i in range(count)]
    translations = translator.translate_ids(sources, options, heads=heads)
    seconds = time.perf_counter() - start
    return _scored(translator, corpus, references, translations, seconds, loss)


def evaluate_replies(
    responder: Responder,
    corpus: TokenizedCorpus,
    sources: list[str],
    references: list[str],
    *,
    options: DecodeOptions | None = None,
    loss: bool = True,
) -> Evaluation:
    """Answer the `sources` of a dialogue split (their lines; `corpus` is the split
    tokenized) as the chatbot does, reranked when `responder` has a backward model, and
    score the replies against `references` as :func:`evaluate_corpus` does."""
    start = time.perf_counter()
    replies = responder.replies(sources, options)
    seconds = time.perf_counter() - start
    translations = [reply.translation for reply in replies]
    evaluation = _scored(responder.translator, corpus, references, translations, seconds, loss)
    evaluation.replies = replies
    return evaluation


def _scored(
    translator: Translator,
    corpus: TokenizedCorpus,
    references: list[str],
    translations: list[Translation],
    seconds: float,
    loss: bool,
) -> Evaluation:
    """The decoded outputs scored against their references; with `loss`, also the
    teacher-forced loss over the whole corpus."""
    hypotheses = [translation.text for translation in translations]
    refs = references[: len(translations)]
    scores = corpus_metrics(hypotheses, refs)
    scores["exact"] = exact_match(hypotheses, refs)
    if loss:
        batch_tokens = translator.config.train.batch_tokens
        result = corpus_loss(
            translator.model, corpus, batch_tokens, translator.device, translator.dtype
        )
        scores.update(loss=result.nll, ppl=result.ppl, word_ppl=word_perplexity(result, references))
    return Evaluation(translations, refs, scores, seconds)


def load_split(
    run: Run, split: SplitPaths, name: str = "test"
) -> tuple[TokenizedCorpus, list[str], list[str]]:
    """A split tokenized with the run's tokenizers (cached in the run directory, nothing
    dropped), and its raw source and reference lines."""
    corpus = load_corpus(
        split, name, run.src_tok, run.tgt_tok, run.config.data, Path(run.run_dir) / "cache", False
    )
    pairs = list(read_parallel(split, name))
    return corpus, [source for source, _ in pairs], [target for _, target in pairs]


def evaluate_split(
    run: Run, split: SplitPaths, options: DecodeOptions | None = None, *, loss: bool = True
) -> Evaluation:
    """Evaluate a loaded run on `split` (see :func:`evaluate_corpus`)."""
    corpus, _, references = load_split(run, split)
    translator = Translator.from_run(run)
    return evaluate_corpus(translator, corpus, references, options=options, loss=loss)
