"""Evaluating one compared run: every number and picture of the report."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attnmt.compare.runner import read_training_record
from attnmt.config import Config, SplitPaths
from attnmt.data.alignment import GoldAlignment, read_pharaoh
from attnmt.data.corpus import TokenizedCorpus, load_corpus
from attnmt.data.text import read_lines, read_parallel
from attnmt.evaluate.alignment import check_against, corpus_alignment
from attnmt.evaluate.dialogue import dialogue_metrics
from attnmt.evaluate.evaluation import Evaluation, evaluate_corpus
from attnmt.evaluate.relevance import relevance
from attnmt.evaluate.study import LENGTH_EDGES, attention_entropy, bleu_by_length, monotonicity
from attnmt.io.run import Run
from attnmt.models.seq2seq import count_parameters
from attnmt.translate.schema import Translation
from attnmt.translate.translator import Translator
from attnmt.viz.curves import read_metrics
from attnmt.viz.report import Example, RunResult


def example_indices(src_lengths: Sequence[int], quantiles: Sequence[float]) -> list[int]:
    """Sentences at the given quantiles of source length (shortest first), preferring
    distinct lengths, so the heatmaps show a short, a medium and a long sentence."""
    order = sorted(range(len(src_lengths)), key=lambda i: (src_lengths[i], i))
    chosen: list[int] = []
    for q in quantiles:
        position = round(q * (len(order) - 1))
        taken = {src_lengths[i] for i in chosen}
        later = [i for i in order[position:] if src_lengths[i] not in taken and i not in chosen]
        candidates = later or [i for i in order if i not in chosen]
        if candidates:
            chosen.append(candidates[0])
    return chosen


def length_edges(src_lengths: Sequence[int]) -> list[int]:
    """The standard bucket edges (study.LENGTH_EDGES) up to the longest source, so the
    last, open bucket holds sentences and no empty buckets trail behind it."""
    longest = max(src_lengths, default=0)
    return [edge for edge in LENGTH_EDGES if edge <= longest] or [LENGTH_EDGES[0]]


def describe(config: Config) -> dict[str, Any]:
    """The model keys that tell the compared runs apart, for the report's Config column.

    The decoder and its attention are always named; the encoder keys only where they
    differ from the defaults (a unidirectional encoder, a reversed source). A Transformer
    is named with its shape instead: layers (encoder+decoder), heads, d_model, d_ff, and
    its positions and normalisation.
    """
    model = config.model
    if model.arch == "transformer":
        return {
            "arch": "transformer",
            "layers": f"{model.layers}+{model.decoder_layers or model.layers}",
            "heads": model.attention.heads,
            "d_model": model.embed_dim,
            "ff_dim": model.ff_dim or 4 * model.embed_dim,
            "positions": model.positions,
            "norm": model.norm,
        }
    described: dict[str, Any] = {"decoder": model.decoder}
    if model.decoder == "none":
        if model.feed_context:
            described["feed_context"] = True
    else:
        described["score"] = model.attention.score
        described["window"] = model.attention.window
        if model.attention.window != "global":
            described["window_half_width"] = model.attention.window_half_width
        if model.decoder == "luong":
            described["input_feeding"] = model.input_feeding
    if not model.bidirectional:
        described["bidirectional"] = False
    if model.reverse_source:
        described["reverse_source"] = True
    return described


def training_speed(history: Sequence[dict[str, Any]]) -> tuple[float | None, float | None]:
    """(target tokens per second of the training steps, wall time of the run in seconds)
    from the metrics log's last entry (the trainer logs its progress with every entry);
    for a log written before entries carried progress, the mean of its train entries'
    rates. None for what the log does not hold."""
    last = history[-1] if history else {}
    train_time, tokens = last.get("train_time"), last.get("tgt_tokens")
    speed = tokens / train_time if train_time and tokens is not None else None
    if speed is None:
        rates = [e["tgt_tokens_per_s"] for e in history if "tgt_tokens_per_s" in e]
        speed = sum(rates) / len(rates) if rates else None
    return speed, last.get("time")


def attention_rows(translations: Sequence[Translation]) -> list[np.ndarray]:
    """The attention of each best output, without its EOS row.

    The EOS step aligns no output word (models park it on the last source word or spread
    it out), so it is left out of entropy and monotonicity for every run alike. Outputs
    with no word add nothing.
    """
    return [
        t.attention[:-1]  # (T, S)
        for t in translations
        if t.attention is not None and len(t.tokens) > 0
    ]


def example(translation: Translation) -> Example:
    """A heatmap of the report: words (pieces merged), the EOS row last and unlabelled;
    with the grid of every head when the model has more than one."""
    if translation.attention is None:
        src_words, tgt_words = translation.words()
        return Example(src_words, tgt_words, None)
    src_words, tgt_words, weights = translation.word_attention()
    heads = translation.word_heads()  # (layers, heads, T + 1, S) when asked for
    if heads is not None and heads.shape[0] * heads.shape[1] == 1:
        heads = None  # one head: the map above already is that head
    return Example(src_words, tgt_words[:-1], weights, heads)  # tgt_words[-1] is EOS


def _statistic(
    function: Callable[[list[np.ndarray]], float], rows: list[np.ndarray]
) -> float | None:
    try:
        return function(rows) if rows else None
    except ValueError:  # e.g. no sentence with two output words
        return None


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run with `count` torch CPU threads (None: leave as is), restored afterwards."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class CommonTestSet:
    """The one test set every run is evaluated on, read once."""

    split: SplitPaths  # its files: each run tokenizes them with its own tokenizers (cached)
    sources: list[str]
    references: list[str]
    gold: list[GoldAlignment] | None = None  # gold alignments of the pairs, if known
    conversations: list[str] | None = None
    """Each pair's conversation id, for the hits@1 of dialogue runs: the ``.ids`` file
    beside the sources (``attnmt data chitchat`` writes one), if there is one."""

    @classmethod
    def read(cls, split: SplitPaths, alignment: Path | None = None) -> CommonTestSet:
        """The pairs of `split`'s test files, and with `alignment` (Pharaoh lines, one per
        pair) their gold alignments, checked against the pairs."""
        pairs = list(read_parallel(split, "test"))
        sources, references = [s for s, _ in pairs], [t for _, t in pairs]
        gold = None
        if alignment is not None:
            gold = read_pharaoh(alignment)
            check_against(gold, sources, references, str(alignment))
        ids = Path(split.src).with_suffix(".ids") if split.src is not None else None
        conversations = None
        if ids is not None and ids.is_file():
            conversations = [line.strip() for line in read_lines(ids)]
        return cls(split, sources, references, gold, conversations)


def dialogue_scores(
    translator: Translator, corpus: TokenizedCorpus, test: CommonTestSet, evaluation: Evaluation
) -> dict[str, float]:
    """A dialogue run's numbers: per-word perplexity, what its replies are like, and with
    the test set's conversation ids, hits@1 and MRR (by the summed and the per-token
    log-probability)."""
    scores = {"word_ppl": evaluation.scores["word_ppl"]}
    scores.update(dialogue_metrics(evaluation.hypotheses))
    if test.conversations is not None:
        found = relevance(translator, corpus, test.sources, test.references, test.conversations)
        scores.update(found.scores())
    return scores


def evaluate_run(
    name: str,
    run_dir: Path,
    test: CommonTestSet,
    examples: Sequence[int],
    beam: int = 1,
    device: str = "cpu",
    edges: Sequence[int] = LENGTH_EDGES,
) -> RunResult:
    """Every number and picture of the report for one run, on the test set `test`; with
    its gold alignments, also the AER of the run's attention (argmax rule, forced
    decoding of the references).

    The run is loaded once and the test set decoded once (every attention head only for
    the `examples`); progress comes from the metrics log. Decoding uses the run's
    train.threads, so it is timed as the run was trained.
    """
    run = Run.load(run_dir, device=device)
    corpus = load_corpus(
        test.split, "test", run.src_tok, run.tgt_tok, run.config.data, run.run_dir / "cache", False
    )
    translator = Translator.from_run(run)
    is_dialogue = run.config.data.task == "dialogue"  # replies never show <unk>, as in chat
    options = translator.options(beam=beam, n_best=1, sample=False, allow_unk=not is_dialogue)
    with torch_threads(run.config.train.threads):
        evaluation = evaluate_corpus(
            translator, corpus, test.references, options=options, heads=examples
        )
        aligned = None
        if test.gold is not None:
            aligned = corpus_alignment(run, corpus, test.sources, test.references, test.gold)
        dialogue = dialogue_scores(translator, corpus, test, evaluation) if is_dialogue else {}
    scores, translations = evaluation.scores, evaluation.translations
    metrics_log = run_dir / "metrics.jsonl"
    history = read_metrics(metrics_log) if metrics_log.is_file() else []
    tokens_per_s, wall_time = training_speed(history)
    record = read_training_record(run_dir)
    rows = attention_rows(translations)
    return RunResult(
        name=name,
        config=describe(run.config),
        bleu=scores["bleu"],
        chrf=scores["chrf"],
        ppl=scores["ppl"],
        parameters=count_parameters(run.model),
        train_tgt_tokens_per_s=tokens_per_s,
        decode_sents_per_s=len(test.sources) / max(evaluation.decode_seconds, 1e-9),
        peak_memory_mb=record.peak_memory_mb if record else None,
        wall_time_s=wall_time,
        bleu_by_length=bleu_by_length(
            [len(s.split()) for s in test.sources],
            evaluation.hypotheses,
            evaluation.references,
            edges,
        ),
        attention_entropy=_statistic(attention_entropy, rows),
        monotonicity=_statistic(monotonicity, rows),
        aer=aligned.aer if aligned is not None else None,
        dialogue=dialogue,
        history=history,
        examples=[example(translations[i]) for i in examples],
    )
