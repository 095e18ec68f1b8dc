"""Score a trained model on a test set: BLEU, chrF and perplexity."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from attnmt.checkpoint import load_model
from attnmt.config import SplitPaths
from attnmt.data import load_corpus, read_parallel
from attnmt.device import resolve_device, resolve_precision
from attnmt.evaluate import corpus_loss, corpus_metrics, detokenize, translate_corpus
from attnmt.fileio import write_text_atomic
from attnmt.tokenize import load_tokenizers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="RUN_DIR", help="trained run directory")
    parser.add_argument("--src", required=True, help="source sentences, one per line (.gz ok)")
    parser.add_argument("--ref", required=True, help="reference translations, line-aligned")
    parser.add_argument("--beam", type=int, default=None, help="beam size (default: decode.beam)")
    parser.add_argument("--output", help="also write the translations to this file")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.model)
    device = resolve_device(args.device)
    model, config = load_model(run_dir, device=device)
    dtype = resolve_precision(config.train.precision, device)
    src_tok, tgt_tok = load_tokenizers(run_dir / "tokenizer")
    split = SplitPaths(src=args.src, tgt=args.ref)
    corpus = load_corpus(split, "test", src_tok, tgt_tok, config.data, run_dir / "cache", False)
    references = [tgt for _, tgt in read_parallel(split, "test")]
    decode_config = config.decode
    if args.beam is not None:
        decode_config = decode_config.model_copy(update={"beam": args.beam})
    results = translate_corpus(model, corpus, decode_config, device, dtype)
    hypotheses = detokenize(results, tgt_tok)
    scores = corpus_metrics(hypotheses, references)
    loss = corpus_loss(model, corpus, config.train.batch_tokens, device, dtype)
    scores.update(ppl=loss.ppl, sentences=len(hypotheses), beam=decode_config.beam)
    if args.output:
        write_text_atomic(Path(args.output), "".join(h + "\n" for h in hypotheses))
    if args.json:
        print(json.dumps(scores))
    else:
        print(
            f"BLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  perplexity {scores['ppl']:.2f}"
            f"  ({len(hypotheses)} sentences, beam {decode_config.beam})"
        )
    return 0
