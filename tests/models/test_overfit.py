"""Every variant builds from YAML and trains; each decoder type memorises a tiny task."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import ALL_VARIANTS, tiny_config, variant_id

from attnmt.config import load_config
from attnmt.models.build import build_model
from attnmt.models.seq2seq import Seq2Seq
from attnmt.special import BOS_ID, EOS_ID, PAD_ID

VOCAB = 12  # 4 special ids + 8 symbols


def reverse_task(
    n: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sentences of 3..6 symbols; the target is the source reversed, then EOS."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 7, (n,), generator=gen)
    src = torch.full((n, 6), PAD_ID)
    tgt = torch.full((n, 8), PAD_ID)
    for b, length in enumerate(lengths.tolist()):
        tokens = torch.randint(4, VOCAB, (length,), generator=gen)
        src[b, :length] = tokens
        tgt[b, 0] = BOS_ID
        tgt[b, 1 : length + 1] = tokens.flip(0)
        tgt[b, length + 1] = EOS_ID
    return src, lengths, tgt[:, :-1], tgt[:, 1:]


def train_steps(model: Seq2Seq, steps: int, lr: float, data) -> float:
    """Train on one fixed batch; return teacher-forced token accuracy afterwards."""
    src, lengths, tgt_in, tgt_out = data
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        logits, _ = model(src, lengths, tgt_in)
        loss = F.cross_entropy(logits.transpose(1, 2), tgt_out, ignore_index=PAD_ID)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    model.eval()
    with torch.no_grad():
        logits, _ = model(src, lengths, tgt_in)
    real = tgt_out != PAD_ID
    return (logits.argmax(-1) == tgt_out)[real].float().mean().item()


@pytest.mark.parametrize("variant", ALL_VARIANTS, ids=variant_id)
def test_every_variant_builds_from_yaml_and_trains(variant, tmp_path: Path) -> None:
    model_section = tiny_config(variant).model_dump()
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump({"model": model_section}))
    config = load_config(path)
    assert config.model == tiny_config(variant)
    torch.manual_seed(0)
    model = build_model(config.model, VOCAB, VOCAB)
    data = reverse_task(16, seed=1)
    src, lengths, tgt_in, tgt_out = data
    with torch.no_grad():
        before = F.cross_entropy(
            model(src, lengths, tgt_in)[0].transpose(1, 2), tgt_out, ignore_index=PAD_ID
        )
    train_steps(model, 10, 1e-2, data)
    with torch.no_grad():
        after = F.cross_entropy(
            model(src, lengths, tgt_in)[0].transpose(1, 2), tgt_out, ignore_index=PAD_ID
        )
    assert after < before


OVERFIT = {
    "none": dict(
        decoder="none", bridge="last", feed_context=False, rnn="lstm", bidirectional=False
    ),
    "bahdanau": dict(decoder="bahdanau", attention=dict(score="concat")),
    "luong": dict(decoder="luong", attention=dict(score="general"), input_feeding=True),
    "luong-fast": dict(decoder="luong", attention=dict(score="dot"), input_feeding=False),
}


@pytest.mark.parametrize("name", list(OVERFIT))
def test_decoder_overfits_reverse_task(name: str) -> None:
    fields = dict(embed_dim=32, hidden_dim=64, dropout=0.0, **OVERFIT[name])
    config = load_config(None, [f"model={fields}"]).model
    torch.manual_seed(0)
    model = build_model(config, VOCAB, VOCAB)
    accuracy = train_steps(model, 300, 1e-2, reverse_task(24, seed=2))
    assert accuracy == 1.0, f"{name}: token accuracy {accuracy:.3f} after 300 steps"
