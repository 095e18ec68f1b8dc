"""Dialogue metrics of a chat run on one split, and MMI reranking tuned on it.

    python -m benchmarks.chat --model runs/chitchat --split dev \\
        --rerank runs/chitchat_backward --mmi-weight 0 0.25 0.5 0.75 --length-bonus 0 0.5 1

Prints a Markdown section (command, machine, date, commit) with

- the run's perplexity per token and per word, and hits@1/20 and MRR by the summed and
  the per-token log-probability (docs/chat.md has the definitions);
- what the run's chat decoding says without reranking: distinct-1/2, reply length, and
  the unique and generic shares;
- with --rerank, for each λ (--mmi-weight) and γ (--length-bonus): hits@1 and MRR by the
  MMI score, and the same reply metrics for the best of N candidates by that score.

Every (λ, γ) reuses one decode of N candidates per message and one backward pass over
them, so a grid costs about one reranked evaluation. Tune on dev; then report test once,
with the values chosen, through `attnmt evaluate --rerank`. Nothing is timed.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import torch

from attnmt.config import RerankOptions, SplitPaths
from attnmt.data.text import read_lines
from attnmt.evaluate.dialogue import dialogue_metrics
from attnmt.evaluate.evaluation import load_split
from attnmt.evaluate.metrics import corpus_loss, word_perplexity
from attnmt.evaluate.relevance import relevance
from attnmt.io.run import Run
from attnmt.translate.chatbot import ChatReply, Responder
from attnmt.translate.rerank import Reranker, mmi_score
from attnmt.translate.translator import Translator
from benchmarks.common import command_line, commit, machine

REPLY_COLUMNS = "distinct-1 | distinct-2 | reply length | unique | generic"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a dialogue run directory")
    parser.add_argument("--rerank", metavar="BACKWARD_RUN", help="a backward dialogue run")
    parser.add_argument("--data", default="data/chitchat", help="attnmt data chitchat's --out")
    parser.add_argument("--split", default="dev", help="dev (to tune) or test (default: dev)")
    parser.add_argument("--rank-pairs", type=int, metavar="N", help="pairs ranked for hits@1")
    parser.add_argument("--mmi-weight", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75])
    parser.add_argument("--length-bonus", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--candidates", type=int, help="N (default: the run's rerank.candidates)")
    parser.add_argument(
        "--messages",
        type=int,
        metavar="N",
        help="decode replies to the first N messages only (default: all); the reply "
        "metrics and the grid's columns then describe those",
    )
    parser.add_argument(
        "--sample",
        action=argparse.BooleanOptionalAction,
        help="sample the replies and candidates (default: the run's decode.sample)",
    )
    parser.add_argument("--seed", type=int, default=1, help="sampling seed (default: 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    return parser.parse_args(argv)


def reply_cells(replies: Sequence[str]) -> str:
    m = dialogue_metrics(replies)
    return (
        f"{m['distinct_1']:.4f} | {m['distinct_2']:.4f} | {m['reply_len']:.1f} | "
        f"{m['unique']:.1%} | {m['generic']:.1%}"
    )


def best_by(answers: Sequence[ChatReply], options: RerankOptions) -> list[str]:
    """Each answer's candidate with the highest MMI score under `options`."""

    def score(answer: ChatReply, k: int) -> float:
        c = answer.candidates[k]
        return c.score if c.backward is None else mmi_score(c.forward, c.backward, c.words, options)

    return [
        max(enumerate(a.candidates), key=lambda item: score(a, item[0]))[1].text for a in answers
    ]


def report(args: argparse.Namespace) -> str:
    """The Markdown section."""
    if args.threads:
        torch.set_num_threads(args.threads)
    run = Run.load(args.model, device=args.device)
    translator = Translator.from_run(run)
    folder = Path(args.data)
    split = SplitPaths(src=str(folder / f"{args.split}.src"), tgt=str(folder / f"{args.split}.tgt"))
    corpus, sources, references = load_split(run, split, args.split)
    conversations = [line.strip() for line in read_lines(folder / f"{args.split}.ids")]
    reranker = Reranker.load(args.rerank, device=args.device) if args.rerank else None

    batch_tokens = run.config.train.batch_tokens
    loss = corpus_loss(run.model, corpus, batch_tokens, run.device, run.dtype)
    found = relevance(
        translator,
        corpus,
        sources,
        references,
        conversations,
        reranker=reranker,
        pairs=args.rank_pairs,
    )
    scores = found.scores()
    options = translator.options(seed=args.seed, sample=args.sample)
    decoded = sources[: args.messages] if args.messages else sources
    plain = [reply.text for reply in Responder(translator).replies(decoded, options)]

    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    decoding = "sampling" if options.sample else f"beam {options.beam}"
    lines = [
        f"## Chat metrics: {args.model} on {args.split} ({len(sources):,} pairs)",
        "",
        f"- command: `{command_line()}`",
        f"- machine: {machine()}",
        f"- date: {now}",
        f"- commit: {commit()}",
        f"- decoding: the run's ({decoding}, top-p {options.top_p}, temperature "
        f"{options.temperature}), seed {args.seed}, replies to {len(decoded):,} messages",
        "",
        "| perplexity | per word | hits@1/20 | MRR | hits@1 per token | MRR per token "
        "| pairs ranked |",
        "|---|---|---|---|---|---|---|",
        f"| {loss.ppl:.1f} | {word_perplexity(loss, references):.1f} | {scores['hits_1']:.3f} "
        f"| {scores['mrr']:.3f} | {scores['hits_1_mean']:.3f} | {scores['mrr_mean']:.3f} "
        f"| {int(scores['ranked']):,} |",
        "",
        f"| replies | {REPLY_COLUMNS} |",
        "|---|---|---|---|---|---|",
        f"| human (the references) | {reply_cells(references[: len(decoded)])} |",
        f"| chat decoding, no reranking | {reply_cells(plain)} |",
    ]
    if reranker is None:
        return "\n".join(lines) + "\n"
    candidates = args.candidates or run.config.rerank.candidates
    responder = Responder(translator, reranker, RerankOptions(candidates=candidates))
    answers = responder.replies(decoded, options)
    lines += [
        "",
        f"MMI reranking with {args.rerank}, best of {candidates} candidates per message:",
        "",
        f"| λ | γ | hits@1/20 | MRR | {REPLY_COLUMNS} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for weight in args.mmi_weight:
        for bonus in args.length_bonus:
            rerank = RerankOptions(mmi_weight=weight, length_bonus=bonus, candidates=candidates)
            ranks = found.ranks("mmi", rerank)
            hits, mrr = float((ranks == 1).mean()), float((1.0 / ranks).mean())
            cells = reply_cells(best_by(answers, rerank))
            lines.append(f"| {weight:g} | {bonus:g} | {hits:.3f} | {mrr:.3f} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    print(report(parse_args(argv)), end="")


if __name__ == "__main__":
    main()
