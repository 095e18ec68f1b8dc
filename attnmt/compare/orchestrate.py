"""Compare attention variants on one task: train what is missing, evaluate, write a report.

This is the orchestration behind ``attnmt compare`` (and the alignment helpers behind
``attnmt plot attention``). It sits on top of the library: it imports training,
evaluation, plotting and the report, and nothing in the library imports it.

    configs ──► resolved configs ──► one training subprocess each ──► run directories ─┐
    run directories given as they are ─────────────────────────────────────────────────┤
                                                                                        ▼
    one test set ──► decode every run (greedy) ──► RunResult ──► report.html, results.*

Fairness rules, applied the same way to every config:

- the **task** supplies the data section (files, tokenizer, lengths), the model sizes and
  the training defaults; the preset YAML then overrides what it wants (the attention);
- the **forced** keys come last and win: ``data`` (the task's, whole), ``train.seed``,
  ``train.max_minutes`` and ``run_dir = <out>/runs/<config stem>``.

What the report's numbers are, for every run alike:

- BLEU, chrF (sacrebleu) and perplexity on the one test set, decoded greedily unless a
  beam is asked for; decoding sentences/s is that decode, timed;
- training target tokens/s and wall time come from the run's newest step checkpoint
  (tokens / time spent in training steps; wall time of the loop, validation included);
- peak memory: each config trains in its own ``python -m attnmt.cli train`` process, so
  the process's ``ru_maxrss`` is the run's own. It includes the Python interpreter and
  torch themselves. Run directories given as they are
  were not trained here and show no peak memory;
- BLEU by source length buckets sources by their whitespace words, whatever the
  tokenizer, so runs with different vocabularies line up;
- attention entropy and monotonicity measure the best output of every test sentence,
  without the EOS step's row (it aligns no word); heatmaps show words (subword pieces
  merged), the EOS row included and labelled "</s>".
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from attnmt.compare.evaluation import CommonTestSet, evaluate_run, example_indices, length_edges
from attnmt.compare.runner import (
    RunInput,
    config_differences,
    is_finished,
    resolve_inputs,
    resolved_config,
    train_subprocess,
)
from attnmt.compare.tasks import Task, synthetic_task
from attnmt.config import (
    SplitPaths,
)
from attnmt.errors import UserError
from attnmt.io.checkpoint import (
    find_model_checkpoint,
    load_model,
)
from attnmt.viz.report import write_report

EXAMPLE_QUANTILES = (0.1, 0.45, 0.8)  # source-length quantiles of the heatmap sentences

AER_NOTE = (
    "AER: alignment error rate of the attention against the task's gold alignments "
    "(Och & Ney 2003; 0 is perfect, lower is better), from forced decoding of the "
    "references, each target word linked to the source word it attends to most. Read it "
    "with care: attention is soft and need not align (Bahdanau attention spreads over "
    "neighbours), and a model (input feeding, a fixed window) may attend one or two words "
    "beside the word it translates and still translate well. A dash: no attention."
)


@dataclass
class CompareSettings:
    """Everything `attnmt compare` was asked, resolved."""

    inputs: list[str]  # YAML configs and run directories, in report column order
    out: Path  # the report folder; config runs go to <out>/runs/<stem>
    task: Callable[[Path], Task] = synthetic_task  # makes the task configs train on
    seed: int = 1
    minutes: float | None = None  # None: the task's default budget
    beam: int = 1  # beam size for the test decode (1: greedy)
    test: SplitPaths | None = None  # None: the task's test split (or the runs' own)
    device: str = "cpu"
    command: str = "attnmt compare"
    log: Callable[[str], None] = field(default=print)


def _common_test_set(inputs: Sequence[RunInput]) -> SplitPaths:
    """The test split every given run directory names; they must agree."""
    tests = set()
    for item in inputs:
        _, config = load_model(item.run_dir)
        tests.add(config.data.test.model_dump_json())
    if len(tests) != 1 or not SplitPaths.model_validate_json(next(iter(tests))).given:
        raise UserError(
            "the run directories name different (or no) test sets; "
            "choose one with --test-src and --test-ref"
        )
    return SplitPaths.model_validate_json(next(iter(tests)))


def prepare_runs(settings: CompareSettings) -> tuple[list[RunInput], Task | None]:
    """Train every config that has no finished run and check the run directories.

    Returns the inputs in order and the task (None when there is no config: then no
    task data is written).
    """
    inputs = resolve_inputs(settings.inputs, settings.out)
    for item in inputs:
        if item.config_path is None:
            find_model_checkpoint(item.run_dir)  # a one-line error unless it holds a model
    configs = [item for item in inputs if item.config_path is not None]
    task = settings.task(settings.out) if configs else None
    for number, item in enumerate(configs, start=1):
        assert item.config_path is not None and task is not None
        minutes = settings.minutes or task.minutes
        config = resolved_config(item.config_path, task, item.run_dir, settings.seed, minutes)
        prefix = f"[{number}/{len(configs)}] {item.name}:"
        if is_finished(item.run_dir):
            differs = config_differences(item.run_dir, config)
            note = f" (note: trained with other {', '.join(differs)})" if differs else ""
            settings.log(f"{prefix} finished run in {item.run_dir}, not retrained{note}")
            continue
        log_path = item.run_dir / "train.log"
        steps = task.defaults.get("train", {}).get("max_steps")
        budget = f"{steps} steps (at most {minutes:g} min)" if steps else f"{minutes:g} min"
        settings.log(f"{prefix} training for {budget} (log: {log_path})")
        record = train_subprocess(config, log_path)
        settings.log(
            f"{prefix} done in {record.process_wall_s:.0f} s, "
            f"peak memory {record.peak_memory_mb:,.0f} MB"
        )
    return inputs, task


def machine() -> str:
    """The CPU (or GPU), the cores and the torch version, for the report."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores visible{gpu}; torch {torch.__version__}"


def report_notes(
    test: SplitPaths, sentences: int, beam: int, task: Task | None, minutes: float | None
) -> list[str]:
    """How the report's numbers were made, in plain words."""
    search = "greedy search" if beam == 1 else f"beam search (beam {beam})"
    notes = [
        f"Test set: {test.src or test.tsv} ({sentences} sentences), decoded with {search}.",
        "Train tgt tokens/s and wall time: the run's newest step checkpoint (target tokens "
        "per second spent in training steps; wall time of the training loop, validation "
        "included).",
        "Peak memory: the peak resident memory (ru_maxrss) of the run's own training "
        "process, Python and torch included; a dash for runs that "
        "were not trained by this command.",
        "Source length counts whitespace words. Attention statistics leave out the EOS "
        "step's row; heatmaps show words, with the EOS row last.",
        f"Machine: {machine()}.",
    ]
    if task is not None:
        budget = f"{minutes or task.minutes:g} min each"
        steps = task.defaults.get("train", {}).get("max_steps")
        if steps:  # a step budget, with the minutes as a cap
            budget = f"{steps} training steps each, at most {budget}"
        notes.insert(
            1,
            f"Configs were trained on the {task.name} task with the same data, seed and "
            f"budget ({budget}); a run that already existed was not retrained.",
        )
    return notes


def compare(settings: CompareSettings) -> Path:
    """Train what is missing, evaluate every run on one test set, write the report.

    The test set is settings.test if given, else the task's test split when any config
    was given, else the one test split all the run directories name.
    Returns the path of report.html (beside it: results.json and results.csv).
    """
    inputs, task = prepare_runs(settings)
    alignment = None  # gold alignments are known for the task's own test split only
    if settings.test is not None:
        test = settings.test
    elif task is not None:
        test, alignment = task.test, task.test_alignment
    else:
        test = _common_test_set(inputs)
    test_set = CommonTestSet.read(test, alignment)
    sources = test_set.sources
    if not sources:
        raise UserError("the test set is empty")
    lengths = [len(source.split()) for source in sources]
    examples = example_indices(lengths, EXAMPLE_QUANTILES)
    edges = length_edges(lengths)
    results = []
    for item in inputs:
        settings.log(f"evaluating {item.name} on {len(sources)} test sentences")
        results.append(
            evaluate_run(
                item.name, item.run_dir, test_set, examples, settings.beam, settings.device, edges
            )
        )
    title = f"attnmt compare: {len(results)} runs"
    notes = report_notes(test, len(sources), settings.beam, task, settings.minutes)
    if alignment is not None:
        notes.insert(-1, AER_NOTE)
    report = write_report(settings.out, results, command=settings.command, title=title, notes=notes)
    settings.log(f"report: {report} (with results.json and results.csv)")
    return report
