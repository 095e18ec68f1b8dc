"""Score a trained model on a test set: BLEU, chrF and perplexity; for a dialogue model
(data.task: dialogue) also distinct-1/2 and the mean reply length of the decoded replies."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from attnmt.config import SplitPaths, decode_options
from attnmt.errors import UserError
from attnmt.evaluate.alignment import RULES, THRESHOLD, evaluate_alignment
from attnmt.evaluate.dialogue import dialogue_metrics
from attnmt.evaluate.evaluation import evaluate_split
from attnmt.files import write_text_atomic
from attnmt.io.run import Run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="RUN_DIR", help="trained run directory")
    parser.add_argument("--src", required=True, help="source sentences, one per line (.gz ok)")
    parser.add_argument("--ref", required=True, help="reference translations, line-aligned")
    parser.add_argument("--beam", type=int, default=None, help="beam size (default: decode.beam)")
    parser.add_argument(
        "--sample",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sample instead of searching (default: decode.sample); --beam 1 --no-sample is greedy",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed for sampling (default: 1)")
    parser.add_argument(
        "--align",
        metavar="FILE",
        help="gold word alignments of --src/--ref (Pharaoh: i-j sure, ipj possible, one line "
        "per pair): also report the AER of the attention, by forced decoding of --ref",
    )
    parser.add_argument(
        "--align-rule",
        choices=RULES,
        default="argmax",
        help="links from attention: each target word's heaviest source word (argmax, the "
        "default) or every source word with at least --align-threshold of its attention",
    )
    parser.add_argument(
        "--align-threshold",
        type=float,
        default=THRESHOLD,
        help=f"the threshold rule's weight (default: {THRESHOLD})",
    )
    parser.add_argument("--output", help="also write the translations to this file")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument(
        "--which",
        default="best",
        help="checkpoint: best, last, averaged (attnmt average) or a path (default: best)",
    )


def run(args: argparse.Namespace) -> int:
    run = Run.load(args.model, which=args.which, device=args.device)
    split = SplitPaths(src=args.src, tgt=args.ref)
    overrides = {"beam": args.beam, "sample": args.sample, "seed": args.seed}
    options = decode_options(run.config.decode, overrides)
    beam, sample = options.beam, options.sample
    evaluation = evaluate_split(run, split, options)
    hypotheses = evaluation.hypotheses
    scores = {key: evaluation.scores[key] for key in ("bleu", "chrf", "ppl")}
    dialogue = run.config.data.task == "dialogue"
    if dialogue:  # what the decoding produces: varied or generic, long or short
        scores.update(dialogue_metrics(hypotheses))
    scores.update(sentences=len(hypotheses), beam=beam, sample=sample)
    if args.align:
        aligned = evaluate_alignment(run, split, args.align, args.align_rule, args.align_threshold)
        if aligned is None:
            raise UserError("--align: this model has no attention to align")
        scores.update(
            aer=aligned.aer, align_precision=aligned.precision, align_recall=aligned.recall
        )
    if args.output:
        write_text_atomic(Path(args.output), "".join(h + "\n" for h in hypotheses))
    if args.json:
        print(json.dumps(scores))
    else:
        print(
            f"BLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  perplexity {scores['ppl']:.2f}"
            f"  ({len(hypotheses)} sentences, {'sampling' if sample else f'beam {beam}'})"
        )
        if dialogue:
            print(
                f"distinct-1 {scores['distinct_1']:.4f}  distinct-2 {scores['distinct_2']:.4f}"
                f"  reply length {scores['reply_len']:.2f} words"
                f"  unique replies {scores['unique']:.1%}"
            )
        if args.align:
            print(
                f"AER {scores['aer']:.4f}  precision {scores['align_precision']:.4f}"
                f"  recall {scores['align_recall']:.4f}  ({args.align_rule} rule)"
            )
    return 0
