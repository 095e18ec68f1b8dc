"""Decode Multi30k test_2016_flickr (de->en) with one trained run in every deployable form,
fp32, PyTorch's auto default, bf16 (where the CPU has it), int8 (``attnmt export
--int8``), ONNX fp32 (``attnmt export --onnx``) and onnxruntime's own int8, greedy and
beam 5; report sentences/s, test BLEU, the decoding process's peak RSS and the model
files' sizes, appended to BENCHMARKS.md (issue 25).

    python -m benchmarks.export --model runs/bench/luong_concat
    python -m benchmarks.export --model runs/bench/transformer --rounds 3

Every measure is its own fresh process (``--child``): it loads the model, decodes the
first 20 sentences once (warm-up, not timed), then the whole test set in one
``Translator.translate`` call, and prints what it found; its peak RSS is read by the
parent from the kernel (``wait4``), so a variant's memory is what loading and decoding it
took, startup included. The variants run in turn within each round, and each speed is the
median over the rounds; the ratios to fp32 are the medians of each round's ratio.

int8.pt and the ONNX export are made when missing (int8.pt beside best.pt; the export in a
temporary directory unless ``--onnx DIR`` names one). A variant that cannot run here is
listed with the reason and skipped: bf16 on a CPU without native bf16, ONNX without the
``attnmt[onnx]`` extra. The no-torch example (examples/onnx_translate.py, greedy) and
``attnmt translate`` (fp32, greedy) decode the same input in their own processes for the
peak-RSS comparison. A trial on any run and a handful of sentences:

    python -m benchmarks.export --model runs/quickstart --limit 20 --rounds 1 --no-record \\
        --src runs/quickstart/data/test.src --ref runs/quickstart/data/test.tgt
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from attnmt.errors import UserError
from benchmarks import common

TEST = "test_2016_flickr"
SEARCHES = (("greedy", 1), ("beam 5", 5))
WARMUP_SENTENCES = 20
EXAMPLE = common.ROOT / "examples" / "onnx_translate.py"


@dataclass(frozen=True)
class Variant:
    """One deployable form: what ``Translator.load`` is given."""

    name: str
    model: str  # a run directory or an ONNX export directory
    which: str = "best"
    precision: str = "auto"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, metavar="RUN_DIR", help="trained run")
    data = common.ROOT.parent / "shared/data/multi30k"
    parser.add_argument("--src", default=str(data / f"{TEST}.de.gz"), help="source sentences")
    parser.add_argument("--ref", default=str(data / f"{TEST}.en.gz"), help="references")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, help="decode only the first N sentences")
    parser.add_argument("--rounds", type=int, default=3, help="each variant once per round")
    parser.add_argument("--onnx", metavar="DIR", help="an existing ONNX export of --model")
    parser.add_argument("--no-record", action="store_true", help="print, do not append")
    child = parser.add_argument_group("one measure (internal)")
    child.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    child.add_argument("--which", default="best", help=argparse.SUPPRESS)
    child.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    child.add_argument("--beam", type=int, default=1, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------
# One measure, in its own process


def read_test(src: str, ref: str, limit: int | None) -> tuple[list[str], list[str]]:
    from attnmt.config import SplitPaths
    from attnmt.data.text import read_parallel

    pairs = list(read_parallel(SplitPaths(src=src, tgt=ref), "test"))[:limit]
    return [s for s, _ in pairs], [r for _, r in pairs]


def child(args: argparse.Namespace) -> None:
    """Load one variant, warm up, decode the test set once; print seconds and BLEU."""
    import torch

    from attnmt.evaluate.metrics import corpus_metrics
    from attnmt.translate.translator import Translator

    torch.set_num_threads(args.threads)
    translator = Translator.load(
        args.model, device="cpu", which=args.which, precision=args.precision
    )
    sources, references = read_test(args.src, args.ref, args.limit)
    translator.translate(sources[:WARMUP_SENTENCES], beam=args.beam)
    start = time.perf_counter()
    results = translator.translate(sources, beam=args.beam)
    seconds = time.perf_counter() - start
    texts = [result.text for result in results]
    bleu = corpus_metrics(texts, references)["bleu"]
    dtype = str(translator.dtype or "fp32").replace("torch.", "")
    print(json.dumps({"seconds": seconds, "sentences": len(texts), "bleu": bleu, "dtype": dtype}))


LAUNCHER = """\
import resource, subprocess, sys
code = subprocess.call(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""
"""Runs a command and prints its peak RSS in KiB last on stderr. A process forked from
this one (torch loaded) would report this one's memory too: Linux counts the RSS a child
had before its exec. The launcher is small, so its child's peak is the command's own."""


def run_measured(command: list[str], stdin: Path | None = None) -> tuple[str, float]:
    """Run `command` to the end through the launcher: its stdout and peak RSS in MB."""
    with open(stdin or os.devnull, "rb") as source:
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, *command],
            stdin=source,
            capture_output=True,
            cwd=common.ROOT,
            check=False,
        )
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    if done.returncode:
        raise UserError(f"{' '.join(command[1:4])} ... failed: {lines[-2:-1]}")
    return done.stdout.decode(), int(lines[-1]) / 1024


def measure(args: argparse.Namespace, variant: Variant, beam: int) -> dict[str, float]:
    """One variant, one search, in a fresh process: seconds, sentences, BLEU, peak RSS."""
    command = [sys.executable, "-m", "benchmarks.export", "--child", "--model", variant.model]
    command += ["--which", variant.which, "--precision", variant.precision, "--beam", str(beam)]
    command += ["--src", args.src, "--ref", args.ref, "--threads", str(args.threads)]
    command += [] if args.limit is None else ["--limit", str(args.limit)]
    out, peak = run_measured(command)
    found: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return {**found, "rss": peak}


# ---------------------------------------------------------------------------
# The variants


def variants(args: argparse.Namespace, workdir: Path) -> tuple[list[Variant], list[str]]:
    """Every variant that can run here, and a line for each that cannot."""
    from attnmt.device import cpu_has_native_bf16
    from attnmt.export.int8 import export_int8
    from attnmt.io.checkpoint import INT8

    run = args.model
    found = [Variant("PyTorch fp32", run, precision="fp32")]
    found.append(Variant("PyTorch auto (the default)", run))
    skipped = []
    if cpu_has_native_bf16():
        found.append(Variant("PyTorch bf16", run, precision="bf16"))
    else:
        skipped.append("PyTorch bf16: this CPU has no native bf16 (avx512_bf16 or amx_bf16)")
    if not (Path(run) / "checkpoints" / INT8).is_file():
        export_int8(Path(run))
    found.append(Variant("PyTorch int8", run, which="int8"))
    onnx, reason = onnx_export(args, workdir)
    if onnx is None:
        skipped.append(f"ONNX fp32 and onnxruntime int8: {reason}")
        return found, skipped
    found.append(Variant("ONNX fp32 (onnxruntime)", str(onnx)))
    quantized, reason = onnxruntime_int8(onnx, workdir / "onnx-int8")
    if quantized is None:
        skipped.append(f"onnxruntime int8: {reason}")
    else:
        found.append(Variant("onnxruntime int8", str(quantized)))
    return found, skipped


def onnx_export(args: argparse.Namespace, workdir: Path) -> tuple[Path | None, str]:
    """--onnx DIR, or a fresh export of the run's best checkpoint; None and why not."""
    if args.onnx:
        return Path(args.onnx), ""
    try:
        from attnmt.export.onnx import export_onnx
    except ImportError as err:
        return None, f"the ONNX export is not available ({err})"
    try:
        return export_onnx(Path(args.model), workdir / "onnx"), ""
    except UserError as err:
        return None, str(err)


def onnxruntime_int8(onnx: Path, target: Path) -> tuple[Path | None, str]:
    """A copy of the export whose two graphs onnxruntime quantised dynamically (int8
    weights of MatMul and Gemm); None and why not."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        return None, f"onnxruntime.quantization is not installed ({err.name})"
    shutil.copytree(onnx, target, dirs_exist_ok=True)
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process, per graph
    try:
        for graph in ("encoder.onnx", "decoder_step.onnx"):
            quantize_dynamic(onnx / graph, target / graph, weight_type=QuantType.QInt8)
    except Exception as err:  # onnxruntime refuses a graph: report it, measure the rest
        return None, f"onnxruntime could not quantise the graphs ({type(err).__name__})"
    return target, ""


def model_files(path: Path, variant: Variant) -> float:
    """The size of the files a variant loads, in MB (an export: its .onnx graphs)."""
    if (path / "manifest.json").is_file():
        return sum(f.stat().st_size for f in path.glob("*.onnx")) / 1e6
    name = "int8.pt" if variant.which == "int8" else "best.pt"
    return (path / "checkpoints" / name).stat().st_size / 1e6


# ---------------------------------------------------------------------------
# The comparison


def peak_rss_of_commands(
    args: argparse.Namespace, onnx: str | None, workdir: Path
) -> list[tuple[str, str]]:
    """Peak RSS of the no-torch example and of `attnmt translate`, greedy, same input."""
    sources, _ = read_test(args.src, args.ref, args.limit)
    inputs = workdir / "input.txt"
    inputs.write_text("".join(line + "\n" for line in sources), encoding="utf-8")
    translate = [sys.executable, "-m", "attnmt", "translate", "--model", args.model]
    translate += ["--beam", "1", "--threads", str(args.threads), "--precision", "fp32"]
    _, translate_rss = run_measured(translate, inputs)
    rows = [("attnmt translate (fp32, greedy): peak RSS", f"{translate_rss:,.0f} MB")]
    if onnx is None or not EXAMPLE.is_file():
        return rows + [("no-torch example: peak RSS", "skipped: no ONNX export")]
    _, example_rss = run_measured([sys.executable, str(EXAMPLE), onnx], inputs)
    ratio = example_rss / translate_rss
    return rows + [
        ("no-torch example (ONNX fp32, greedy): peak RSS", f"{example_rss:,.0f} MB"),
        ("no-torch example / attnmt translate: peak RSS", f"{ratio:.2f}"),
    ]


def compare(args: argparse.Namespace) -> tuple[list[tuple[str, str]], str]:
    """Every variant and search, `args.rounds` times in turn; BENCHMARKS.md rows and notes."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="attnmt-export-bench-") as scratch:
        workdir = Path(scratch)
        found, skipped = variants(args, workdir)
        speeds: dict[tuple[str, str], list[float]] = {}
        last: dict[tuple[str, str], dict[str, float]] = {}
        rss: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for variant in found:
                for label, beam in SEARCHES:
                    result = measure(args, variant, beam)
                    key = (variant.name, label)
                    speeds.setdefault(key, []).append(result["sentences"] / result["seconds"])
                    rss.setdefault(key, []).append(result["rss"])
                    last[key] = result
        onnx = next((v.model for v in found if v.name.startswith("ONNX")), None)
        commands = peak_rss_of_commands(args, onnx, workdir)
        sentences = last[(found[0].name, "greedy")]["sentences"]
        rows = [
            ("run", f"`{args.model}`"),
            ("test set", f"{Path(args.src).name}, {int(sentences):,} sentences"),
            ("rounds (each measure a fresh process; speeds are medians)", str(args.rounds)),
            ("machine load average (1 min) before", f"{load_before:.2f}"),
        ]
        for variant in found:
            size = model_files(Path(variant.model), variant)
            rows.append((f"{variant.name}: model files", f"{size:,.1f} MB"))
            for label, _ in SEARCHES:
                key = (variant.name, label)
                rows += [
                    (
                        f"{variant.name}, {label}: sentences/s",
                        f"{statistics.median(speeds[key]):,.1f}",
                    ),
                    (f"{variant.name}, {label}: BLEU", f"{last[key]['bleu']:.2f}"),
                    (f"{variant.name}, {label}: peak RSS", f"{max(rss[key]):,.0f} MB"),
                ]
                if variant is not found[0]:
                    rows.append(
                        common.ratio_row(
                            f"{variant.name}, {label}: speed / fp32",
                            speeds[key],
                            speeds[(found[0].name, label)],
                        )
                    )
        rows += commands
    notes = "Skipped: " + "; ".join(skipped) + "." if skipped else ""
    return rows, notes


def main() -> None:
    args = parse_args()
    if args.child:
        child(args)
        return
    if args.rounds < 1:
        raise UserError(f"--rounds must be at least 1 (got {args.rounds})")
    rows, notes = compare(args)
    name = Path(args.model).name
    title = f"Exported models: {name} in fp32, bf16, int8 and ONNX, {args.threads} threads"
    if args.no_record:
        print("\n".join(f"{name}: {value}" for name, value in rows))
        print(notes)
    else:
        common.append(title, rows, notes)


if __name__ == "__main__":
    try:
        main()
    except UserError as err:  # a wrong path or run directory: one line, no traceback
        sys.exit(f"benchmarks.export: error: {err}")
