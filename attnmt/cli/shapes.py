"""Print the tensor shapes of a real RNN encoder-decoder on a real batch.

What the study notes teach about PyTorch's recurrent layers, shown on attnmt's own
encoder (models/rnn_encoder.py: RNNEncoder.forward) and a padded batch of synthetic
sentences (data/batching.py: make_batch): seq-first against batch-first, packing, and
h_n as (layers·directions, B, H), then what the model computes from them.

    attnmt shapes                                    default sizes, 3 sentences
    attnmt shapes --set model.layers=2 --set model.rnn=lstm
    attnmt shapes --set model.reverse_source=true    the source as the encoder reads it
    attnmt shapes configs/multi30k_de_en_bahdanau.yaml --batch 4
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnmt.config import ModelConfig, load_config
from attnmt.data.batching import Batch, make_batch
from attnmt.data.corpus import TokenizedCorpus
from attnmt.data.synthetic import generate
from attnmt.data.tokenize import Tokenizer, WordTokenizer
from attnmt.errors import UserError
from attnmt.models.build import build_model
from attnmt.models.interface import TrainableModel
from attnmt.models.modes import evaluating
from attnmt.models.rnn_encoder import RNNEncoder
from attnmt.nn.rnn import reverse_padded

VOCAB_SIZE = 1000  # every word of a few synthetic sentences fits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("config", nargs="?", help="YAML file of overrides (model.* is used)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override one key"
    )
    parser.add_argument("--batch", type=int, default=3, metavar="B", help="sentences in the batch")
    parser.add_argument("--seed", type=int, default=3, help="which synthetic sentences")


def run(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise UserError(f"--batch must be at least 1, got {args.batch}")
    config = load_config(args.config, args.set)
    pairs = varied_pairs(args.batch, args.seed)
    print("\n".join(shape_report(config.model, pairs, seed=args.seed)))
    return 0


def varied_pairs(count: int, seed: int) -> list[tuple[str, str]]:
    """`count` synthetic pairs of spread-out source lengths, so that padding and packing
    show: evenly spaced in length among eight times as many drawn with `seed`."""
    drawn = sorted(generate(8 * count, seed), key=lambda pair: len(pair.source.split()))
    step = (len(drawn) - 1) / max(count - 1, 1)
    picked = [drawn[round(i * step)] for i in range(count)]
    return [(pair.source, pair.target) for pair in reversed(picked)]


def shape_report(
    model_config: ModelConfig, pairs: Sequence[tuple[str, str]], seed: int = 1
) -> list[str]:
    """The lines `attnmt shapes` prints: the batch, the packed sequence, the RNN's own
    outputs in both layouts, attnmt's encoder output and the model's outputs."""
    if model_config.arch != "rnn":
        raise UserError(
            f"attnmt shapes shows the recurrent encoder; model.arch is {model_config.arch!r} "
            "(see its heads with `attnmt plot attention --heads`)"
        )
    if not pairs:
        raise UserError("attnmt shapes needs at least one sentence pair")
    src_tok = WordTokenizer.build((src for src, _ in pairs), VOCAB_SIZE)
    tgt_tok = WordTokenizer.build((tgt for _, tgt in pairs), VOCAB_SIZE)
    corpus = TokenizedCorpus.from_ids(
        [src_tok.encode(src) for src, _ in pairs], [tgt_tok.encode(tgt) for _, tgt in pairs]
    )
    batch = make_batch(corpus, range(len(pairs)))
    torch.manual_seed(seed)
    model = build_model(model_config, src_tok.vocab_size, tgt_tok.vocab_size)
    encoder = model.encoder  # type: ignore[attr-defined]
    assert isinstance(encoder, RNNEncoder)
    lines = [f"model: {_describe(model_config)}", ""]
    lines += _batch_lines(batch, src_tok, model_config.reverse_source)
    with evaluating(model), torch.no_grad():
        lines += _rnn_lines(encoder, batch)
        lines += _model_lines(model, batch)
    return lines


def _describe(config: ModelConfig) -> str:
    directions = "bidirectional" if config.bidirectional else "unidirectional"
    per_direction = config.hidden_dim // (2 if config.bidirectional else 1)
    return (
        f"{config.rnn.upper()} encoder, {config.layers} layer(s), {directions}, "
        f"embed_dim E={config.embed_dim}, hidden_dim {config.hidden_dim} "
        f"(H={per_direction} per direction); decoder {config.decoder!r}"
    )


def _shape(tensor: Tensor) -> str:
    return str(tuple(tensor.shape))


def _batch_lines(batch: Batch, src_tok: Tokenizer, reversed_source: bool) -> list[str]:
    size, src_len = batch.src.shape
    lines = [f"a real batch, padded (data/batching.py: make_batch), B={size}, S={src_len}:"]
    for row in range(size):
        words = src_tok.to_pieces(batch.src[row].tolist())
        lines.append("  " + " ".join(word.lstrip("\u2581") for word in words))
    lines += [
        f"  src          {_shape(batch.src)}  (B, S) ids, 0 = <pad> at the end of short rows",
        f"  src_lengths  {_shape(batch.src_lengths)}  {batch.src_lengths.tolist()}",
        f"  tgt_in       {_shape(batch.tgt_in)}  (B, T): <s> y_1 ... y_n",
        f"  tgt_out      {_shape(batch.tgt_out)}  (B, T): y_1 ... y_n </s>",
        "",
    ]
    if reversed_source:
        read = reverse_padded(batch.src, batch.src_lengths)  # (B, S)
        lines.append("model.reverse_source: the encoder reads each row backwards, padding stays:")
        for row in range(size):
            words = src_tok.to_pieces(read[row].tolist())
            lines.append("  " + " ".join(word.lstrip("\u2581") for word in words))
        lines += ["  (its states are put back in source order: position j is still word j)", ""]
    return lines


def _rnn_lines(encoder: RNNEncoder, batch: Batch) -> list[str]:
    """PyTorch's RNN on the batch, packed, in both layouts; then attnmt's encoder."""
    src, lengths = batch.src, batch.src_lengths
    if encoder.reverse_source:
        src = reverse_padded(src, lengths)
    embedded = encoder.embedding(src)  # (B, S, E)
    rnn = encoder.rnn
    packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
    packed_out, final = rnn(packed)
    h_n = final[0] if isinstance(final, tuple) else final  # (L·dirs, B, H/dirs)
    batch_first, _ = pad_packed_sequence(packed_out, batch_first=True)  # (B, S, H)
    seq_first_rnn = _seq_first_copy(rnn)
    seq_packed = pack_padded_sequence(embedded.transpose(0, 1), lengths, enforce_sorted=False)
    seq_out, _ = seq_first_rnn(seq_packed)
    seq_first, _ = pad_packed_sequence(seq_out)  # (S, B, H)
    dirs, layers = 2 if rnn.bidirectional else 1, rnn.num_layers
    real = torch.arange(batch_first.size(1)).unsqueeze(0) < lengths.unsqueeze(1)  # (B, S)
    lines = [
        f"embedding    {_shape(embedded)}  (B, S, E)",
        "",
        "packing (pack_padded_sequence): only real tokens enter the RNN",
        f"  data         {_shape(packed.data)}  (sum of src_lengths, E), time-major",
        f"  batch_sizes  {packed.batch_sizes.tolist()}  sentences still running at each step",
        "",
        f"PyTorch's {type(rnn).__name__}: num_layers={layers}, "
        f"bidirectional={rnn.bidirectional}, hidden_size={rnn.hidden_size} per direction",
        f"  seq-first  (batch_first=False, PyTorch's default): input (S, B, E), "
        f"output {_shape(seq_first)}  (S, B, dirs·H)",
        f"  batch-first (batch_first=True, attnmt's choice): input (B, S, E), "
        f"output {_shape(batch_first)}  (B, S, dirs·H)",
        f"  the same numbers, transposed: {_close(seq_first.transpose(0, 1), batch_first)}",
        f"  h_n          {_shape(h_n)}  (layers·directions, B, H) = ({layers}·{dirs}, "
        f"{h_n.size(1)}, {h_n.size(2)}), in either layout",
    ]
    if isinstance(final, tuple):
        lines.append(f"  c_n          {_shape(final[1])}  the LSTM's cell state, like h_n")
    last = batch_first[torch.arange(lengths.numel()), lengths - 1, : rnn.hidden_size]  # (B, H)
    lines += [
        f"  h_n[{dirs * layers - dirs}] (top layer, forward) = output at each row's last real "
        f"token: {_close(h_n[dirs * layers - dirs], last)}",
        f"  output at padding is zero: {bool((batch_first[~real] == 0).all())}",
    ]
    if dirs == 2:
        first = batch_first[:, 0, rnn.hidden_size :]  # (B, H)
        lines.append(
            f"  h_n[{dirs * layers - 1}] (top layer, backward) = its output at token 0: "
            f"{_close(h_n[-1], first)}"
        )
    encoded = encoder(batch.src, lengths)
    in_source_order = (
        reverse_padded(batch_first, lengths) if encoder.reverse_source else batch_first
    )
    lines += [
        "",
        "attnmt's encoder (models/rnn_encoder.py: RNNEncoder.forward):",
        f"  memory       {_shape(encoded.memory)}  (B, S, dirs·H): h_j, one vector per source word",
        f"  src_mask     {_shape(encoded.src_mask)}  (B, S) bool, True on real tokens",
        f"  memory = the padded RNN output above"
        f"{' put back in source order' if encoder.reverse_source else ''}: "
        f"{_close(encoded.memory, in_source_order)}",
        f"  final        {_shape(_hidden(encoded.final))}  (layers, B, dirs·H): "
        "h_n with each layer's directions side by side",
        "",
    ]
    return lines


def _model_lines(model: TrainableModel, batch: Batch) -> list[str]:
    logits, attention = model(batch.src, batch.src_lengths, batch.tgt_in)
    lines = [
        "the whole model, teacher-forced (models/seq2seq.py: Seq2Seq.forward):",
        f"  logits       {_shape(logits)}  (B, T, V): a distribution over the vocabulary per step",
    ]
    if attention is None:
        lines.append("  attention    None: model.decoder none reads only the bridge's vector")
    else:
        lines.append(
            f"  attention    {_shape(attention)}  (B, T, S): α, each row sums to 1 over the source"
        )
    memory = model.encode(batch.src, batch.src_lengths)
    state = model.init_state(memory)
    log_probs, step_attention, _ = model.step(batch.tgt_in[:, 0], memory, state)
    lines.append(
        f"one decoding step (Seq2Seq.step): log_probs {_shape(log_probs)} (B, V)"
        + (f", attention {_shape(step_attention)} (B, S)" if step_attention is not None else "")
    )
    return lines


def _seq_first_copy(rnn: nn.RNNBase) -> nn.RNNBase:
    """The same recurrent layer and weights, seq-first (PyTorch's default layout)."""
    copy: nn.RNNBase = type(rnn)(  # type: ignore[call-arg]
        rnn.input_size,  # type: ignore[arg-type]
        rnn.hidden_size,
        num_layers=rnn.num_layers,
        bidirectional=rnn.bidirectional,
        batch_first=False,
    )
    copy.load_state_dict(rnn.state_dict())
    return copy.eval()


def _hidden(state: Tensor | tuple[Tensor, Tensor]) -> Tensor:
    return state[0] if isinstance(state, tuple) else state


def _close(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=1e-6)
