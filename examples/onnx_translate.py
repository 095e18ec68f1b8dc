"""Translate with an attnmt ONNX export using numpy, onnxruntime and sentencepiece alone:
no torch, no attnmt. Greedy search with the run's own length rules, so the output is
attnmt's greedy output (``attnmt translate --model DIR --beam 1``).

    attnmt export runs/multi30k_de_en_transformer --onnx exports/transformer
    python examples/onnx_translate.py exports/transformer < test.de > test.en

What it reads from the export directory (see docs/deploying.md):

- manifest.json: the special ids, the decode settings (``config.decode``), which
  encoder outputs are memory (``memory.*``) and which the first decoder state
  (``state.*``), and each one's batch axis;
- tokenizer/tokenizers.json and the files it names: a sentencepiece model, or a
  word or character vocabulary (JSON: ``{"kind": ..., "pieces": [...]}``, the id being
  the position);
- encoder.onnx: src (B, S) int64, src_lengths (B,) int64 -> memory.*, state.*;
- decoder_step.onnx: tokens (B,), memory.*, state.* -> log_probs (B, V), attention
  (B, S) when the model has attention, next_state.*.

Greedy search, as attnmt's (attnmt/search/rules.py):

    y_t = argmax_y log p(y | y_<t, x), with PAD, BOS (and UNK unless decode.allow_unk)
    never output, EOS forbidden while t < shortest and the only choice at t = longest,
    longest = min(max_len, floor(max_len_ratio · |x|) + 5),
    shortest = min(max(min_len, ceil(min_len_ratio · |x|)), longest).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnxruntime

UNK_TEXT = "\u2047"  # how attnmt shows an unknown word or character ("⁇")


class VocabTokenizer:
    """attnmt's word or character tokenizer: a list of pieces, the id the position."""

    def __init__(self, kind: str, pieces: list[str], special: dict[str, int]) -> None:
        self.kind, self.pieces = kind, pieces
        self.ids = {piece: i for i, piece in enumerate(pieces)}
        self.unk = special["unk"]
        self.control = {special["pad"], special["bos"], special["eos"]}

    def encode(self, text: str) -> list[int]:
        pieces = text.split() if self.kind == "word" else list(" ".join(text.split()))
        return [self.ids.get(piece, self.unk) for piece in pieces]

    def decode(self, ids: list[int]) -> str:
        kept = [UNK_TEXT if i == self.unk else self.pieces[i] for i in ids if i not in self.control]
        return " ".join(kept) if self.kind == "word" else "".join(kept)


class SentencePieceTokenizer:
    def __init__(self, path: Path, special: dict[str, int]) -> None:
        import sentencepiece

        self.processor = sentencepiece.SentencePieceProcessor(model_file=str(path))
        self.control = {special["pad"], special["bos"], special["eos"]}

    def encode(self, text: str) -> list[int]:
        return list(self.processor.encode(text, out_type=int))

    def decode(self, ids: list[int]) -> str:
        return str(self.processor.decode([i for i in ids if i not in self.control]))


def load_tokenizers(directory: Path, special: dict[str, int]) -> tuple:
    """The (source, target) tokenizers attnmt saved in `directory`."""
    meta = json.loads((directory / "tokenizers.json").read_text(encoding="utf-8"))

    def load(file_name: str):
        if meta["kind"] == "sentencepiece":
            return SentencePieceTokenizer(directory / file_name, special)
        saved = json.loads((directory / file_name).read_text(encoding="utf-8"))
        return VocabTokenizer(saved["kind"], saved["pieces"], special)

    source = load(meta["src"])
    return source, source if meta["tgt"] == meta["src"] else load(meta["tgt"])


class Export:
    """The two sessions of an export and its manifest."""

    def __init__(self, directory: Path) -> None:
        self.manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        if self.manifest.get("format") != "attnmt-onnx":
            raise SystemExit(f"{directory} is not an attnmt ONNX export")
        options = onnxruntime.SessionOptions()
        sessions = [
            directory / self.manifest[graph]["file"] for graph in ("encoder", "decoder_step")
        ]
        self.encoder, self.step = (
            onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for path in sessions
        )
        self.outputs = [spec["name"] for spec in self.manifest["memory"]]  # memory.*, state.*
        self.step_inputs = [node.name for node in self.step.get_inputs()]
        self.step_outputs = [node.name for node in self.step.get_outputs()]

    def greedy(self, sources: list[list[int]]) -> list[list[int]]:
        """The greedy outputs (ids, without EOS) of a batch of sources (ids, none empty)."""
        ids, decode = self.manifest["special_ids"], self.manifest["config"]["decode"]
        batch, longest_src = len(sources), max(map(len, sources))
        src = np.full((batch, longest_src), ids["pad"], dtype=np.int64)
        for row, source in enumerate(sources):
            src[row, : len(source)] = source
        lengths = np.array([len(source) for source in sources], dtype=np.int64)
        encoded = self.encoder.run(self.outputs, {"src": src, "src_lengths": lengths})
        values = dict(zip(self.outputs, encoded, strict=True))
        longest = np.minimum(decode["max_len"], np.floor(decode["max_len_ratio"] * lengths) + 5)
        shortest = np.minimum(
            np.maximum(decode["min_len"], np.ceil(decode["min_len_ratio"] * lengths)), longest
        )
        banned = [ids["pad"], ids["bos"]] + ([] if decode["allow_unk"] else [ids["unk"]])
        outputs: list[list[int]] = [[] for _ in sources]
        done = np.zeros(batch, dtype=bool)
        tokens = np.full(batch, ids["bos"], dtype=np.int64)
        t = 0
        while not done.all():
            feeds = {"tokens": tokens, **values}
            results = dict(
                zip(
                    self.step_outputs,
                    self.step.run(None, {n: feeds[n] for n in self.step_inputs}),
                    strict=True,
                )
            )
            log_probs = constrain(
                results["log_probs"],
                outputs,
                t,
                shortest,
                longest,
                banned,
                ids["eos"],
                decode["no_repeat_ngram"],
            )
            tokens = log_probs.argmax(axis=1).astype(np.int64)
            for row in np.flatnonzero(~done):
                if tokens[row] == ids["eos"]:
                    done[row] = True
                else:
                    outputs[row].append(int(tokens[row]))
            for name, value in results.items():
                if name.startswith("next_state."):
                    values["state." + name[len("next_state.") :]] = value
            t += 1
        return outputs


def constrain(
    log_probs: np.ndarray,
    outputs: list[list[int]],
    t: int,
    shortest: np.ndarray,
    longest: np.ndarray,
    banned: list[int],
    eos: int,
    no_repeat_ngram: int,
) -> np.ndarray:
    """attnmt's rules (see the module docstring) on log_probs (B, V) at step t."""
    log_probs = log_probs.copy()
    eos_column = log_probs[:, eos].copy()
    for row, history in enumerate(outputs):  # no n-gram twice: ban each one's last token
        length = len(history)
        if no_repeat_ngram > 0 and length >= no_repeat_ngram:
            prefix = history[length - no_repeat_ngram + 1 :]
            for start in range(length - no_repeat_ngram + 1):
                if history[start : start + no_repeat_ngram - 1] == prefix:
                    log_probs[row, history[start + no_repeat_ngram - 1]] = -math.inf
    log_probs[:, [*banned, eos]] = -math.inf
    at_longest = t >= longest
    log_probs[at_longest] = -math.inf
    allow_eos = at_longest | (t >= shortest)
    if no_repeat_ngram > 0:
        allow_eos |= np.isneginf(log_probs).all(axis=1)
    log_probs[:, eos] = np.where(allow_eos, eos_column, -math.inf)
    return log_probs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", type=Path, help="the directory attnmt export --onnx wrote")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences decoded together")
    args = parser.parse_args()
    export = Export(args.export)
    src_tok, tgt_tok = load_tokenizers(args.export / "tokenizer", export.manifest["special_ids"])
    limit = export.manifest["max_src_len"]
    lines = sys.stdin.read().splitlines()
    sources = [src_tok.encode(line) for line in lines]
    for number, source in enumerate(sources, 1):
        if limit is not None and len(source) > limit:
            raise SystemExit(
                f"line {number}: {len(source)} tokens, more than the {limit} the model reads"
            )
    order = sorted((i for i, s in enumerate(sources) if s), key=lambda i: len(sources[i]))
    translations = [""] * len(sources)  # an empty source translates to an empty line
    for start in range(0, len(order), args.batch_size):
        rows = order[start : start + args.batch_size]
        for row, output in zip(rows, export.greedy([sources[i] for i in rows]), strict=True):
            translations[row] = tgt_tok.decode(output)
    sys.stdout.write("".join(text + "\n" for text in translations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
