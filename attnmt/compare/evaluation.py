"""Evaluating one compared run: every number and picture of the report."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attnmt.compare.runner import read_training_record
from attnmt.config import Config, SplitPaths
from attnmt.data.text import read_parallel
from attnmt.evaluate.alignment import evaluate_alignment
from attnmt.evaluate.dialogue import dialogue_metrics
from attnmt.evaluate.evaluation import evaluate_split
from attnmt.evaluate.study import LENGTH_EDGES, attention_entropy, bleu_by_length, monotonicity
from attnmt.io.checkpoint import load_checkpoint, step_checkpoints
from attnmt.io.run import Run
from attnmt.models.seq2seq import count_parameters
from attnmt.translate.translator import Translation, Translator
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


def _training_progress(run_dir: Path) -> dict[str, Any]:
    """The loop's progress (steps, tokens, times) from the newest step checkpoint."""
    steps = step_checkpoints(run_dir)
    if not steps:
        return {}
    progress = load_checkpoint(steps[-1]).get("progress", {})
    return progress if isinstance(progress, dict) else {}


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


def evaluate_run(
    name: str,
    run_dir: Path,
    test: SplitPaths,
    examples: Sequence[int],
    beam: int = 1,
    device: str = "cpu",
    edges: Sequence[int] = LENGTH_EDGES,
    alignment: Path | None = None,
) -> RunResult:
    """Every number and picture of the report for one run, on the test set `test`;
    with `alignment` (the test set's gold, Pharaoh lines), also the AER of its attention
    (argmax rule, forced decoding of the references).

    Decoding uses the run's train.threads, so it is timed as the run was trained.
    """
    run = Run.load(run_dir, device=device)
    with torch_threads(run.config.train.threads):
        evaluation = evaluate_split(run, test, beam=beam, n_best=1, sample=False)
        aligned = evaluate_alignment(run, test, alignment) if alignment is not None else None
    sources = [source for source, _ in read_parallel(test, "test")]
    scores, translations = evaluation.scores, evaluation.translations
    progress = _training_progress(run_dir)
    record = read_training_record(run_dir)
    rows = attention_rows(translations)
    shown = [translations[i] for i in examples]
    if run.model.has_attention:  # the same sentences again, with every head (one pass each)
        translator = Translator.from_run(run)
        shown = [
            translator.translate(sources[i], heads=True, beam=beam, n_best=1, sample=False)
            for i in examples
        ]
    return RunResult(
        name=name,
        config=describe(run.config),
        bleu=scores["bleu"],
        chrf=scores["chrf"],
        ppl=scores["ppl"],
        parameters=count_parameters(run.model),
        train_tgt_tokens_per_s=(
            progress["tgt_tokens"] / progress["train_time"] if progress.get("train_time") else None
        ),
        decode_sents_per_s=len(sources) / max(evaluation.decode_seconds, 1e-9),
        peak_memory_mb=record.peak_memory_mb if record else None,
        wall_time_s=progress.get("elapsed"),
        bleu_by_length=bleu_by_length(
            [len(s.split()) for s in sources], evaluation.hypotheses, evaluation.references, edges
        ),
        attention_entropy=_statistic(attention_entropy, rows),
        monotonicity=_statistic(monotonicity, rows),
        aer=aligned.aer if aligned is not None else None,
        dialogue=dialogue_metrics(evaluation.hypotheses)
        if run.config.data.task == "dialogue"
        else {},
        history=read_metrics(run_dir / "metrics.jsonl")
        if (run_dir / "metrics.jsonl").is_file()
        else [],
        examples=[example(translation) for translation in shown],
    )
