"""Score a trained model on a test set: BLEU, chrF and perplexity (per token and per
word); for a dialogue model (data.task: dialogue) also what its replies are like
(distinct-1/2, length, unique and generic shares) and, with the conversation ids, how
well its scores pick the true reply (hits@1 among 20 and MRR). See docs/chat.md."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from attnmt.cli.chat import add_rerank_arguments, load_reranking
from attnmt.cli.translate import add_checkpoint_arguments
from attnmt.config import DecodeOptions, SplitPaths, decode_options
from attnmt.data.text import read_lines
from attnmt.errors import UserError
from attnmt.evaluate.alignment import RULES, THRESHOLD, evaluate_alignment
from attnmt.evaluate.dialogue import dialogue_metrics
from attnmt.evaluate.evaluation import evaluate_replies, evaluate_split, load_split
from attnmt.evaluate.relevance import CANDIDATES, relevance
from attnmt.files import write_text_atomic
from attnmt.io.run import Run
from attnmt.translate.chatbot import Responder
from attnmt.translate.translator import Translator

SCORES = ("bleu", "chrf", "exact", "ppl", "word_ppl")  # exact: the share equal to the reference


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
    dialogue = parser.add_argument_group("dialogue models")
    dialogue.add_argument(
        "--ids",
        metavar="FILE",
        help="each pair's conversation id, line-aligned with --src, for hits@1 and MRR "
        "(default: the .ids file beside --src, as attnmt data chitchat writes it)",
    )
    dialogue.add_argument(
        "--rank-pairs",
        type=int,
        metavar="N",
        help=f"rank N pairs (drawn with a fixed seed) among {CANDIDATES} candidates each "
        "(default: every pair)",
    )
    dialogue.add_argument(
        "--n-best",
        type=int,
        metavar="N",
        help="with --rerank: candidates per message (default: rerank.candidates)",
    )
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
    add_rerank_arguments(parser)  # dialogue models
    parser.add_argument("--output", help="also write the translations to this file")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    add_checkpoint_arguments(parser)


def run(args: argparse.Namespace) -> int:
    run = Run.load(args.model, which=args.which, device=args.device, precision=args.precision)
    split = SplitPaths(src=args.src, tgt=args.ref)
    overrides = {"beam": args.beam, "sample": args.sample, "seed": args.seed}
    options = decode_options(run.config.decode, overrides)
    beam, sample = options.beam, options.sample
    dialogue = run.config.data.task == "dialogue"
    if not dialogue and (args.rerank or args.ids or args.rank_pairs is not None):
        raise UserError("--rerank, --ids and --rank-pairs are for dialogue models")
    if dialogue:
        scores = _dialogue(args, run, split, options)
        evaluation = scores.pop("evaluation")
    else:
        evaluation = evaluate_split(run, split, options)
        scores = {key: evaluation.scores[key] for key in SCORES}
    hypotheses = evaluation.hypotheses
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
        return 0
    print(
        f"BLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}"
        f"  exact {100 * scores['exact']:.1f}%  perplexity {scores['ppl']:.2f}"
        f"  per word {scores['word_ppl']:.2f}"
        f"  ({len(hypotheses)} sentences, {'sampling' if sample else f'beam {beam}'})"
    )
    if dialogue:
        _print_dialogue(scores)
    if args.align:
        print(
            f"AER {scores['aer']:.4f}  precision {scores['align_precision']:.4f}"
            f"  recall {scores['align_recall']:.4f}  ({args.align_rule} rule)"
        )
    return 0


def _dialogue(
    args: argparse.Namespace, run: Run, split: SplitPaths, options: DecodeOptions
) -> dict[str, Any]:
    """A dialogue run's replies (as the chatbot gives them, reranked with --rerank) and
    their scores; with conversation ids, hits@1 and MRR. The Evaluation is under
    "evaluation"."""
    translator = Translator.from_run(run)
    reranker, rerank = load_reranking(args, translator, args.n_best)
    responder = Responder(translator, reranker, rerank)
    corpus, sources, references = load_split(run, split)
    evaluation = evaluate_replies(responder, corpus, sources, references, options=options)
    scores: dict[str, Any] = {k: evaluation.scores[k] for k in SCORES}
    scores.update(dialogue_metrics(evaluation.hypotheses))
    if reranker is not None:
        scores.update(
            rerank=args.rerank,
            mmi_weight=rerank.mmi_weight,
            length_bonus=rerank.length_bonus,
            candidates=rerank.candidates,
        )
    ids = Path(args.ids) if args.ids else Path(args.src).with_suffix(".ids")
    if not ids.is_file():
        if args.ids is not None:
            raise UserError(f"--ids: file not found: {ids}")
        print(
            f"attnmt evaluate: no {ids} beside --src, so no hits@1 (give --ids FILE; "
            "attnmt data chitchat writes one)",
            file=sys.stderr,
        )
    else:
        conversations = [line.strip() for line in read_lines(ids)]
        found = relevance(
            translator,
            corpus,
            sources,
            references,
            conversations,
            reranker=reranker,
            pairs=args.rank_pairs,
        )
        scores.update(found.scores(rerank))
    scores["evaluation"] = evaluation
    return scores


def _print_dialogue(scores: dict[str, Any]) -> None:
    print(
        f"distinct-1 {scores['distinct_1']:.4f}  distinct-2 {scores['distinct_2']:.4f}"
        f"  reply length {scores['reply_len']:.2f} words"
        f"  unique replies {scores['unique']:.1%}  generic replies {scores['generic']:.1%}"
    )
    if "rerank" in scores:
        print(
            f"reranked: {scores['candidates']} candidates by MMI with {scores['rerank']} "
            f"(λ {scores['mmi_weight']:g}, γ {scores['length_bonus']:g})"
        )
    if "hits_1" in scores:
        line = (
            f"hits@1/{CANDIDATES} {scores['hits_1']:.3f}  MRR {scores['mrr']:.3f}"
            f"  per token: hits@1 {scores['hits_1_mean']:.3f}  MRR {scores['mrr_mean']:.3f}"
        )
        if "hits_1_mmi" in scores:
            line += f"  MMI: hits@1 {scores['hits_1_mmi']:.3f}  MRR {scores['mrr_mmi']:.3f}"
        print(f"{line}  ({int(scores['ranked'])} pairs ranked)")
