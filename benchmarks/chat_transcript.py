"""The chat transcript (docs/chat_transcript.md): the 20 fixed messages of
benchmarks/chat_messages.txt, one conversation, answered twice side by side, by plain
sampling and by MMI reranking of sampled candidates, as Markdown.

    python -m benchmarks.chat_transcript --model runs/chitchat \\
        --rerank runs/chitchat_backward > transcript.md

The messages were committed before the final models were trained; each conversation runs
once from its start with a fixed seed (reply k draws with seed + k), with no reruns and
no picking. Each bot keeps its own history, so the two conversations drift apart. The
label columns are left as ``?`` for a person to fill in by hand: *answers the message*,
*on topic, not an answer* or *off topic or broken*.

Each message is answered by both bots back to back, and the seconds of each reply are
summed: the reranked reply's cost relative to one sampled reply (N candidates, the
backward model's pass and the arithmetic, against one sample). One torch thread.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

MESSAGES = Path(__file__).with_name("chat_messages.txt")


def read_messages(path: Path = MESSAGES) -> list[str]:
    """The messages, one per line; lines starting with # are comments."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ") or "(empty)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a dialogue run directory")
    parser.add_argument("--rerank", required=True, metavar="BACKWARD_RUN")
    parser.add_argument("--seed", type=int, default=1, help="sampling seed (default: 1)")
    parser.add_argument("--messages", type=Path, default=MESSAGES)
    parser.add_argument("--mmi-weight", type=float, help="λ (default: the run's rerank)")
    parser.add_argument("--length-bonus", type=float, help="γ (default: the run's rerank)")
    parser.add_argument("--candidates", type=int, help="N (default: the run's rerank)")
    args = parser.parse_args()

    import torch

    from attnmt.translate.chatbot import Chatbot

    torch.set_num_threads(1)
    messages = read_messages(args.messages)
    plain = Chatbot.load(args.model, device="cpu", seed=args.seed)
    mmi = Chatbot.load(
        args.model,
        device="cpu",
        seed=args.seed,
        reranker=args.rerank,
        mmi_weight=args.mmi_weight,
        length_bonus=args.length_bonus,
        candidates=args.candidates,
    )
    rows, ratios = [], []
    for k, message in enumerate(messages, 1):
        start = time.perf_counter()
        sampled = plain.reply(message)
        middle = time.perf_counter()
        reranked = mmi.reply(message)
        end = time.perf_counter()
        ratios.append((end - middle) / max(middle - start, 1e-9))
        rows.append(f"| {k} | {cell(message)} | {cell(sampled)} | ? | {cell(reranked)} | ? |")
    rerank = mmi.responder.rerank
    print(
        f"Model `{args.model}`, backward model `{args.rerank}`, seed {args.seed}; MMI: "
        f"λ {rerank.mmi_weight:g}, γ {rerank.length_bonus:g}, best of {rerank.candidates} "
        f"sampled candidates. A reranked reply took {statistics.median(ratios):.1f}× the time "
        "of a sampled one (median over the messages, one torch thread).\n"
    )
    print("| # | message | sampled reply | label | MMI-reranked reply | label |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
