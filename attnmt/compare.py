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
  torch themselves (about 250 MB on a CPU build). Run directories given as they are
  were not trained here and show no peak memory;
- BLEU by source length buckets sources by their whitespace words, whatever the
  tokenizer, so runs with different vocabularies line up;
- attention entropy and monotonicity measure the best output of every test sentence,
  without the EOS step's row (it aligns no word); heatmaps show words (subword pieces
  merged), the EOS row included and labelled "</s>".
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attnmt.checkpoint import find_model_checkpoint, load_checkpoint, load_model, step_checkpoints
from attnmt.config import (
    Config,
    ConfigError,
    DecodeConfig,
    SplitPaths,
    build_config,
    read_yaml,
    save_config,
)
from attnmt.data import load_corpus, read_parallel
from attnmt.device import resolve_device, resolve_precision
from attnmt.errors import UserError
from attnmt.evaluate import corpus_loss, corpus_metrics, detokenize, translate_corpus
from attnmt.fileio import write_text_atomic
from attnmt.model import Seq2Seq, count_parameters
from attnmt.plot import read_metrics
from attnmt.report import Example, RunResult, write_report
from attnmt.search import Hypothesis, decode
from attnmt.study import (
    LENGTH_EDGES,
    attention_entropy,
    bleu_by_length,
    merge_labels,
    monotonicity,
    word_attention,
)
from attnmt.synthetic import make_splits, sentence_pair
from attnmt.tokenize import Tokenizer, load_tokenizers, merge_pieces

ROOT = Path(__file__).resolve().parent.parent  # the repository root (editable install)
CONFIG_SUFFIXES = (".yaml", ".yml")
TRAINING_RECORD = "compare.json"  # what compare measured while training a run
EXAMPLE_QUANTILES = (0.1, 0.45, 0.8)  # source-length quantiles of the heatmap sentences

# --------------------------------------------------------------------------- the tasks

CONJUNCTION = ("and", "soshite")  # joins clauses: source word, target word
MAX_CLAUSES = 3  # a study sentence has 1..MAX_CLAUSES clauses of the quickstart grammar


def study_pair(rng: random.Random, max_clauses: int = MAX_CLAUSES) -> tuple[str, str]:
    """One pair of the study task: 1 to `max_clauses` quickstart sentences joined by "and".

    Each clause is reordered as in :mod:`attnmt.synthetic` (SVO -> SOV and the rest);
    the clauses keep their order. So the alignment stays local, but sources run from 5
    to 50 words, and a model that must squeeze the whole source into one vector
    (no attention) has to carry up to three clauses at once.
    """
    clauses = [sentence_pair(rng) for _ in range(rng.randint(1, max_clauses))]
    source = f" {CONJUNCTION[0]} ".join(src for src, _ in clauses)
    target = f" {CONJUNCTION[1]} ".join(tgt for _, tgt in clauses)
    return source, target


def write_study_task(
    directory: Path, train: int = 20_000, dev: int = 300, test: int = 600, seed: int = 13
) -> dict[str, SplitPaths]:
    """Write the study task's splits as ``{split}.src`` / ``{split}.tgt`` into `directory`.

    No source repeats across splits. The files are written once: when ``task.json`` in
    `directory` records the same sizes and seed, they are reused untouched (so the
    tokenized caches of earlier runs stay valid).
    """
    sizes = {"train": train, "dev": dev, "test": test}
    files = {name: (directory / f"{name}.src", directory / f"{name}.tgt") for name in sizes}
    paths = {name: SplitPaths(src=str(src), tgt=str(tgt)) for name, (src, tgt) in files.items()}
    meta = directory / "task.json"
    wanted = {"task": "study", "seed": seed, **sizes}
    if meta.is_file() and json.loads(meta.read_text(encoding="utf-8")) == wanted:
        return paths
    for name, pairs in make_splits(train, dev, test, seed, study_pair).items():
        src, tgt = files[name]
        write_text_atomic(src, "".join(s + "\n" for s, _ in pairs))
        write_text_atomic(tgt, "".join(t + "\n" for _, t in pairs))
    write_text_atomic(meta, json.dumps(wanted) + "\n")
    return paths


@dataclass
class Task:
    """The data and defaults every compared config shares."""

    name: str  # "synthetic" or "multi30k"
    data: dict[str, Any]  # the whole data section, forced on every config
    defaults: dict[str, Any]  # model sizes, train and decode defaults, under each preset
    minutes: float  # default training budget per config

    @property
    def test(self) -> SplitPaths:
        return SplitPaths.model_validate(self.data["test"])


def synthetic_task(out: Path, **sizes: int) -> Task:
    """The study task (see :func:`study_pair`) written into ``<out>/data``.

    Model sizes and training settings are the quickstart's (embeddings 64, GRU 128, word
    vocabularies), so each config trains in about a minute on two CPU cores.
    """
    splits = write_study_task(out / "data", **sizes)
    data = {
        **{name: split.model_dump(exclude_none=True) for name, split in splits.items()},
        "tokenizer": "word",
        "vocab_size": 200,
        "max_len": 80,
    }
    defaults = {
        "model": {"embed_dim": 64, "hidden_dim": 128, "dropout": 0.1},
        "train": {
            "batch_tokens": 3000,
            "lr": 3e-3,
            "validate_every": 100,
            "log_every": 20,
            "patience": 0,
            "label_smoothing": 0.0,
            "threads": 1,  # small models gain little from more; one keeps timings steady
        },
        "decode": {"beam": 1},
    }
    return Task("synthetic", data, defaults, minutes=1.0)


MULTI30K_CONFIG = ROOT / "configs" / "multi30k_de_en_bahdanau.yaml"
MULTI30K_FILES = {"train": "train", "dev": "val", "test": "test_2016_flickr"}
MULTI30K_SIZES = ("rnn", "bidirectional", "embed_dim", "hidden_dim", "dropout")


def multi30k_dir() -> Path:
    """Where the Multi30k files are: ``data/multi30k``, else ``../shared/data/multi30k``
    (both relative to the current directory, then to the repository root)."""
    candidates = [Path("data/multi30k"), Path("../shared/data/multi30k")]
    candidates += [ROOT / "data/multi30k", ROOT.parent / "shared/data/multi30k"]
    for directory in candidates:
        if (directory / "train.de.gz").is_file():
            return directory
    raise UserError(
        "Multi30k not found in data/multi30k or ../shared/data/multi30k; "
        "get it with: attnmt data multi30k"
    )


def multi30k_task(out: Path) -> Task:
    """Multi30k de->en with the tokenizer, sizes and training settings of
    configs/multi30k_de_en_bahdanau.yaml (only its model sizes, not its attention)."""
    directory = multi30k_dir()
    reference = read_yaml(MULTI30K_CONFIG)
    data = dict(reference["data"])
    for split, stem in MULTI30K_FILES.items():
        data[split] = {
            "src": str(directory / f"{stem}.de.gz"),
            "tgt": str(directory / f"{stem}.en.gz"),
        }
    train = {k: v for k, v in reference["train"].items() if k != "max_minutes"}
    sizes = {k: v for k, v in reference["model"].items() if k in MULTI30K_SIZES}
    defaults = {"model": sizes, "train": train, "decode": reference.get("decode", {})}
    return Task("multi30k", data, defaults, minutes=15.0)


TASKS: dict[str, Callable[[Path], Task]] = {"synthetic": synthetic_task, "multi30k": multi30k_task}


# --------------------------------------------------------------------------- inputs


@dataclass
class RunInput:
    """One thing to compare: a config to train (or reuse), or a finished run directory."""

    name: str  # the column name in the report
    run_dir: Path
    config_path: Path | None = None  # None: a run directory, read as is


def resolve_inputs(arguments: Sequence[str], out: Path) -> list[RunInput]:
    """Sort the command-line arguments into configs and run directories.

    A config's run goes to ``<out>/runs/<stem>``; a run directory keeps its place.
    Names must be unique, so two configs with one stem are an error.
    """
    if not arguments:
        raise UserError("give at least one YAML config or run directory to compare")
    inputs: list[RunInput] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_file() and path.suffix in CONFIG_SUFFIXES:
            inputs.append(RunInput(path.stem, out / "runs" / path.stem, path))
        elif path.is_dir():
            inputs.append(RunInput(path.resolve().name, path))
        else:
            raise UserError(f"{argument}: neither a YAML config (.yaml) nor a run directory")
    names = [item.name for item in inputs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UserError(f"two inputs share the name {duplicates[0]!r}; rename one of them")
    return inputs


def resolved_config(
    config_path: Path, task: Task, run_dir: Path, seed: int, minutes: float
) -> Config:
    """Task defaults, then the preset, then the forced keys (data, seed, budget, run_dir).

    The preset's own data section, if any, is dropped: the task's replaces it whole.
    """
    forced = {
        "run_dir": str(run_dir),
        "data": task.data,
        "train": {"seed": seed, "max_minutes": minutes},
    }
    preset = {key: value for key, value in read_yaml(config_path).items() if key != "data"}
    layers = [
        (f"the {task.name} task", task.defaults),
        (str(config_path), preset),
        ("compare", forced),
    ]
    return build_config(layers)


def is_finished(run_dir: Path) -> bool:
    """A finished run has its best model saved."""
    return (run_dir / "checkpoints" / "best.pt").is_file()


# --------------------------------------------------------------------------- training


@dataclass
class TrainingRecord:
    """What compare measures about a training process it ran."""

    peak_memory_mb: float  # ru_maxrss of the training process (interpreter and torch included)
    process_wall_s: float  # the process's wall time, start-up and tokenizer training included
    resumed: bool  # continued an interrupted run


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(run_dir: Path, config: Config) -> list[str]:
    """Keys whose value in the run's saved config.yaml differs from `config`."""
    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        return []
    try:
        saved = _flatten(Config.model_validate(read_yaml(saved_path)).to_dict())
    except (ConfigError, ValueError):
        return ["(unreadable config.yaml)"]
    wanted = _flatten(config.to_dict())
    return sorted(key for key in wanted if saved.get(key) != wanted[key])


def _peak_mb(usage: Any) -> float:
    """ru_maxrss in MB: Linux reports KiB, macOS bytes."""
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return float(usage.ru_maxrss) / scale


def train_subprocess(config: Config, log_path: Path) -> TrainingRecord:
    """Train `config` in a fresh ``python -m attnmt.cli train`` process; resume a run that
    was interrupted (checkpoints but no best model). Output goes to `log_path`."""
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.yaml"
    resumed = bool(step_checkpoints(run_dir))
    if not resumed:
        save_config(config, config_path)
    command = [sys.executable, "-m", "attnmt.cli", "train", str(config_path), "--no-progress"]
    if resumed:
        command.append("--resume")
    start = time.perf_counter()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _, status, usage = os.wait4(process.pid, 0)  # this child's own resource usage
        except KeyboardInterrupt:
            process.wait()  # it got the Ctrl-C too; it saves a checkpoint and exits
            raise
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        lines = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        last = lines[-1] if lines else "no output"
        raise UserError(
            f"training {run_dir} failed (exit {process.returncode}): {last} [log: {log_path}]"
        )
    record = TrainingRecord(_peak_mb(usage), wall, resumed)
    write_text_atomic(run_dir / TRAINING_RECORD, json.dumps(record.__dict__, indent=2) + "\n")
    return record


def read_training_record(run_dir: Path) -> TrainingRecord | None:
    path = run_dir / TRAINING_RECORD
    try:
        return TrainingRecord(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


# --------------------------------------------------------------------------- alignments


@dataclass
class LoadedRun:
    """A trained model with its tokenizers, ready to decode."""

    run_dir: Path
    model: Seq2Seq
    config: Config
    src_tok: Tokenizer
    tgt_tok: Tokenizer
    device: torch.device
    dtype: torch.dtype | None


def load_run(run_dir: Path, device: str = "cpu") -> LoadedRun:
    """The best model of `run_dir`, its config and tokenizers."""
    resolved = resolve_device(device)
    model, config = load_model(run_dir, device=resolved)
    src_tok, tgt_tok = load_tokenizers(Path(run_dir) / "tokenizer")
    dtype = resolve_precision(config.train.precision, resolved)
    return LoadedRun(Path(run_dir), model, config, src_tok, tgt_tok, resolved, dtype)


@dataclass
class Alignment:
    """One output sentence with its attention, as tokens ready to label a heatmap."""

    src_tokens: list[str]  # the S source pieces
    tgt_tokens: list[str]  # the output pieces, without EOS
    weights: np.ndarray | None  # (T + 1, S): one row per output piece, then the EOS step
    score: float  # log p(output + EOS | source)

    def words(self) -> Alignment:
        """The same alignment over words: source pieces summed, target pieces averaged
        (see :func:`attnmt.plot.merge_attention`); the EOS row stays a row of its own."""
        if self.weights is None:
            src = _join_words(self.src_tokens)
            return Alignment(src, _join_words(self.tgt_tokens), None, self.score)
        src, tgt, weights = word_attention(
            self.src_tokens, self.tgt_tokens, self.weights, merge_pieces
        )
        return Alignment(src, tgt[:-1], weights, self.score)  # tgt[-1] is the EOS label


def _join_words(pieces: Sequence[str]) -> list[str]:
    return merge_labels(pieces, merge_pieces(pieces))


def alignment(hypothesis: Hypothesis, src_ids: Sequence[int], run: LoadedRun) -> Alignment:
    """A decoded hypothesis as labelled tokens and a numpy weight matrix."""
    weights = hypothesis.attention
    return Alignment(
        run.src_tok.to_pieces(list(src_ids)),
        run.tgt_tok.to_pieces(hypothesis.tokens),
        None if weights is None else weights.float().numpy(),
        hypothesis.score,
    )


def translate_sentence(
    run: LoadedRun, text: str, beam: int | None = None, n_best: int = 1
) -> list[Alignment]:
    """Decode one source sentence; the `n_best` outputs, best first, with attention.

    `beam` defaults to the run's decode.beam, raised to `n_best` when that is larger.
    """
    ids = run.src_tok.encode(text)
    if not ids:
        raise UserError("the source sentence is empty")
    beam = beam if beam is not None else max(run.config.decode.beam, n_best)
    if n_best > beam:
        raise UserError(f"--n-best {n_best} needs a beam of at least {n_best} (got {beam})")
    decode_config = run.config.decode.model_copy(
        update={"beam": beam, "n_best": n_best, "sample": False}
    )
    src = torch.tensor([ids], device=run.device)  # (1, S)
    lengths = torch.tensor([len(ids)], device=run.device)  # (1,)
    hypotheses = decode(run.model, src, lengths, decode_config)[0]
    return [alignment(h, ids, run) for h in hypotheses]


# --------------------------------------------------------------------------- evaluation


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
    differ from the defaults (a unidirectional encoder, a reversed source).
    """
    model = config.model
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


def attention_rows(results: Sequence[Sequence[Hypothesis]]) -> list[Tensor]:
    """The attention of each best output, without its EOS row.

    The EOS step aligns no output word (models park it on the last source word or spread
    it out), so it is left out of entropy and monotonicity for every run alike. Outputs
    with no word add nothing.
    """
    rows = []
    for nbest in results:
        if nbest and nbest[0].attention is not None and len(nbest[0].tokens) > 0:
            rows.append(nbest[0].attention[:-1])  # (T, S)
    return rows


def _statistic(function: Callable[[list[Tensor]], float], rows: list[Tensor]) -> float | None:
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
) -> RunResult:
    """Every number and picture of the report for one run, on the test set `test`.

    Decoding uses the run's train.threads, so it is timed as the run was trained.
    """
    run = load_run(run_dir, device)
    with torch_threads(run.config.train.threads):
        return _evaluate(name, run, test, examples, beam, edges)


def _evaluate(
    name: str,
    run: LoadedRun,
    test: SplitPaths,
    examples: Sequence[int],
    beam: int,
    edges: Sequence[int],
) -> RunResult:
    run_dir = run.run_dir
    config = run.config
    corpus = load_corpus(
        test, "test", run.src_tok, run.tgt_tok, config.data, run_dir / "cache", False
    )
    pairs = list(read_parallel(test, "test"))
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    decode_config = DecodeConfig.model_validate(
        {**config.decode.model_dump(), "beam": beam, "n_best": 1, "sample": False}
    )
    start = time.perf_counter()
    results = translate_corpus(run.model, corpus, decode_config, run.device, run.dtype)
    decode_seconds = time.perf_counter() - start
    hypotheses = detokenize(results, run.tgt_tok)
    scores = corpus_metrics(hypotheses, references)
    loss = corpus_loss(run.model, corpus, config.train.batch_tokens, run.device, run.dtype)
    progress = _training_progress(run_dir)
    record = read_training_record(run_dir)
    rows = attention_rows(results)
    shown = [alignment(results[i][0], corpus.src(i).tolist(), run).words() for i in examples]
    return RunResult(
        name=name,
        config=describe(config),
        bleu=scores["bleu"],
        chrf=scores["chrf"],
        ppl=loss.ppl,
        parameters=count_parameters(run.model),
        train_tgt_tokens_per_s=(
            progress["tgt_tokens"] / progress["train_time"] if progress.get("train_time") else None
        ),
        decode_sents_per_s=len(pairs) / max(decode_seconds, 1e-9),
        peak_memory_mb=record.peak_memory_mb if record else None,
        wall_time_s=progress.get("elapsed"),
        bleu_by_length=bleu_by_length(
            [len(s.split()) for s in sources], hypotheses, references, edges
        ),
        attention_entropy=_statistic(attention_entropy, rows),
        monotonicity=_statistic(monotonicity, rows),
        history=read_metrics(run_dir / "metrics.jsonl")
        if (run_dir / "metrics.jsonl").is_file()
        else [],
        examples=[Example(a.src_tokens, a.tgt_tokens, a.weights) for a in shown],
    )


# --------------------------------------------------------------------------- compare


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
        settings.log(f"{prefix} training for {minutes:g} min (log: {log_path})")
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
        "process, Python and torch included (about 250 MB of it); a dash for runs that "
        "were not trained by this command.",
        "Source length counts whitespace words. Attention statistics leave out the EOS "
        "step's row; heatmaps show words, with the EOS row last.",
        f"Machine: {machine()}.",
    ]
    if task is not None:
        budget = minutes or task.minutes
        notes.insert(
            1,
            f"Configs were trained on the {task.name} task with the same data, seed and "
            f"budget ({budget:g} min each); a run that already existed was not retrained.",
        )
    return notes


def compare(settings: CompareSettings) -> Path:
    """Train what is missing, evaluate every run on one test set, write the report.

    The test set is settings.test if given, else the task's test split when any config
    was given, else the one test split all the run directories name.
    Returns the path of report.html (beside it: results.json and results.csv).
    """
    inputs, task = prepare_runs(settings)
    if settings.test is not None:
        test = settings.test
    elif task is not None:
        test = task.test
    else:
        test = _common_test_set(inputs)
    sources = [source for source, _ in read_parallel(test, "test")]
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
                item.name, item.run_dir, test, examples, settings.beam, settings.device, edges
            )
        )
    title = f"attnmt compare: {len(results)} runs"
    notes = report_notes(test, len(sources), settings.beam, task, settings.minutes)
    report = write_report(settings.out, results, command=settings.command, title=title, notes=notes)
    settings.log(f"report: {report} (with results.json and results.csv)")
    return report
