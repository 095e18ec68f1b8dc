"""Tokenizers: special ids, round trips, saving and loading, pieces to words."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from attnmt.config import DataConfig
from attnmt.data.tokenize import (
    META_FILE,
    CharTokenizer,
    Tokenizer,
    WordTokenizer,
    load_tokenizers,
    merge_pieces,
    train_tokenizers,
)
from attnmt.errors import UserError
from attnmt.special import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID
from attnmt.translate.words import read_labels

GERMAN = [
    "Zwei junge Männer spielen Fußball im Park.",
    "Eine Frau mit einem roten Hut liest ein Buch.",
    "Ein kleines Mädchen klettert in ein Spielhaus aus Holz.",
    "Mehrere Männer mit Schutzhelmen bedienen ein großes Antriebssystem.",
    "Ein Hund läuft über den grünen Rasen, während 3 Kinder zusehen!",
]
ENGLISH = [
    "Two young men are playing soccer in the park.",
    "A woman with a red hat is reading a book.",
    "A little girl is climbing into a wooden playhouse.",
    "Several men in hard hats are operating a giant pulley system.",
    "A dog runs across the green lawn while 3 children watch!",
]
KINDS = [
    dict(tokenizer="sentencepiece", spm_type="bpe"),
    dict(tokenizer="sentencepiece", spm_type="unigram"),
    dict(tokenizer="word"),
    dict(tokenizer="char"),
]


def kind_id(kind: dict[str, str]) -> str:
    return "-".join(kind.values())


def write_corpus(directory: Path, n_random: int = 200) -> tuple[Path, Path]:
    """The fixed sentences a few times, plus random recombinations of their words."""
    rng = random.Random(0)
    src_words = " ".join(GERMAN).split()
    tgt_words = " ".join(ENGLISH).split()
    src = GERMAN * 4 + [" ".join(rng.sample(src_words, 6)) for _ in range(n_random)]
    tgt = ENGLISH * 4 + [" ".join(rng.sample(tgt_words, 6)) for _ in range(n_random)]
    src_path, tgt_path = directory / "train.de", directory / "train.en"
    src_path.write_text("\n".join(src) + "\n", encoding="utf-8")
    tgt_path.write_text("\n".join(tgt) + "\n", encoding="utf-8")
    return src_path, tgt_path


def make_config(directory: Path, **fields: Any) -> DataConfig:
    src, tgt = write_corpus(directory)
    fields.setdefault("vocab_size", 120)
    return DataConfig.model_validate(dict(train=dict(src=str(src), tgt=str(tgt)), **fields))


def normalised(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(params=KINDS, ids=kind_id)
def kind(request: pytest.FixtureRequest) -> dict[str, str]:
    return request.param


@pytest.mark.parametrize("joint", [True, False], ids=["joint", "separate"])
def test_train_save_load_round_trip(tmp_path: Path, kind: dict[str, str], joint: bool) -> None:
    config = make_config(tmp_path, joint_vocab=joint, **kind)
    src_tok, tgt_tok = train_tokenizers(config, tmp_path / "tok")
    assert (src_tok is tgt_tok) == joint
    for tok, sentences in ((src_tok, GERMAN), (tgt_tok, ENGLISH)):
        assert 4 < tok.vocab_size <= config.vocab_size
        for sentence in sentences:
            ids = tok.encode(sentence)
            assert ids and all(UNK_ID < i < tok.vocab_size for i in ids)  # no specials, no UNK
            assert tok.decode(ids) == normalised(sentence)
            assert tok.decode([BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID]) == normalised(sentence)

    # Moved elsewhere, the folder still loads: only relative names are saved.
    moved = shutil.move(str(tmp_path / "tok"), str(tmp_path / "moved"))
    loaded_src, loaded_tgt = load_tokenizers(Path(moved))
    assert (loaded_src is loaded_tgt) == joint
    assert loaded_src.fingerprint() == src_tok.fingerprint()
    assert loaded_tgt.fingerprint() == tgt_tok.fingerprint()
    assert loaded_tgt.encode(ENGLISH[0]) == tgt_tok.encode(ENGLISH[0])
    meta = json.loads((Path(moved) / META_FILE).read_text())
    assert (meta["src"] == meta["tgt"]) == joint
    assert not Path(meta["src"]).is_absolute()


def test_separate_vocabularies_differ(tmp_path: Path, kind: dict[str, str]) -> None:
    src_tok, tgt_tok = train_tokenizers(make_config(tmp_path, joint_vocab=False, **kind), tmp_path)
    assert src_tok.fingerprint() != tgt_tok.fingerprint()
    # A German word (with the German-only "ß") is unknown to the English side.
    assert UNK_ID not in src_tok.encode("Fußball") and UNK_ID in tgt_tok.encode("Fußball")


def test_training_is_deterministic(tmp_path: Path, kind: dict[str, str]) -> None:
    config = make_config(tmp_path, **kind)
    first, _ = train_tokenizers(config, tmp_path / "a")
    second, _ = train_tokenizers(config, tmp_path / "b")
    assert first.fingerprint() == second.fingerprint()


def test_special_pieces_and_unknown(tmp_path: Path, kind: dict[str, str]) -> None:
    tok, _ = train_tokenizers(make_config(tmp_path, **kind), tmp_path)
    assert tok.to_pieces([PAD_ID, UNK_ID, BOS_ID, EOS_ID])[::2] == ["<pad>", "<s>"]
    assert tok.to_pieces([EOS_ID]) == ["</s>"]
    assert "<unk>" in tok.to_pieces([UNK_ID])[0]
    assert UNK_ID in tok.encode("Ein Känguru 😀 hüpft")  # "😀" is in no training text
    assert tok.decode([]) == "" and tok.encode("") == []


def test_surfaces_recover_the_words_read_as_unknown(tmp_path: Path, kind: dict[str, str]) -> None:
    """One surface per token, and the unknown words' pieces spell what was written: what
    the server shows instead of "<unk>" (attnmt.translate.words.read_labels)."""
    tok, _ = train_tokenizers(make_config(tmp_path, **kind), tmp_path)
    text = "Ein  Känguru 😀hüpft"
    ids, surfaces = tok.encode(text), tok.surfaces(text)
    assert len(surfaces) == len(ids) and UNK_ID in ids
    labels, unknown = read_labels(tok.to_pieces(ids), merge_pieces(tok.to_pieces(ids)), surfaces)
    assert labels == text.split() and unknown
    assert all("<unk>" not in label for label in labels)


def test_sentencepiece_pieces_mark_words_and_merge_back(tmp_path: Path) -> None:
    tok, _ = train_tokenizers(make_config(tmp_path, vocab_size=60), tmp_path)
    sentence = GERMAN[3]
    pieces = tok.to_pieces(tok.encode(sentence))
    assert pieces[0].startswith("▁")
    words = merge_pieces(pieces)
    assert len(pieces) > len(words) == len(sentence.split())  # some word has several pieces
    for word, group in zip(sentence.split(), words, strict=True):
        assert "".join(pieces[i] for i in group).removeprefix("▁") == word


@pytest.mark.parametrize("tokenizer", [WordTokenizer, CharTokenizer], ids=["word", "char"])
def test_merge_pieces_recovers_words(tokenizer: type[WordTokenizer | CharTokenizer]) -> None:
    text = "ein  Hund läuft"
    tok = tokenizer.build([text], vocab_size=100)
    pieces = tok.to_pieces([BOS_ID, *tok.encode(text), EOS_ID])
    words = merge_pieces(pieces)
    assert words[0] == [0] and words[-1] == [len(pieces) - 1]  # <s> and </s> stand alone
    shown = ["".join(pieces[i] for i in group).removeprefix("▁") for group in words[1:-1]]
    assert shown == text.split()
    assert sorted(i for group in words for i in group) == list(range(len(pieces)))


def test_merge_pieces_rules() -> None:
    assert merge_pieces([]) == []
    assert merge_pieces(["▁The", "▁ca", "t", "</s>"]) == [[0], [1, 2], [3]]
    assert merge_pieces(["ab", "c", "▁", "d"]) == [[0, 1], [2, 3]]
    assert merge_pieces(["<s>", "x", "<pad>", "<pad>"]) == [[0], [1], [2], [3]]


def test_word_vocabulary_keeps_most_frequent() -> None:
    tok = WordTokenizer.build(["a a a b b c", "a b d"], vocab_size=6)
    assert tok.vocab_size == 6
    assert tok.pieces[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert tok.encode("a b c d") == [4, 5, UNK_ID, UNK_ID]


def test_char_tokenizer_restores_spaces() -> None:
    tok = CharTokenizer.build(["ab ba"], vocab_size=50)
    ids = tok.encode(" ab\t ba ")
    assert len(ids) == len("ab ba")
    assert tok.decode(ids) == "ab ba"
    assert tok.to_pieces(ids)[2] == "▁"


def test_vocab_size_too_small_for_sentencepiece(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="vocab_size=8"):
        train_tokenizers(make_config(tmp_path, vocab_size=8), tmp_path / "tok")


def test_bad_training_text_is_reported_with_its_line(tmp_path: Path, kind: dict[str, str]) -> None:
    config = make_config(tmp_path, **kind)
    assert config.train.src is not None
    with open(config.train.src, "ab") as handle:
        handle.write(b"caf\xe9\n")
    lines = len(Path(config.train.src).read_bytes().splitlines())
    with pytest.raises(UserError, match=rf"train.de:{lines}: invalid UTF-8"):
        train_tokenizers(config, tmp_path / "tok")


def saved(tmp_path: Path, kind: dict[str, str]) -> tuple[Path, Tokenizer]:
    tok, _ = train_tokenizers(make_config(tmp_path, **kind), tmp_path / "tok")
    return tmp_path / "tok", tok


def test_load_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=f"no tokenizers in .*{META_FILE} is missing"):
        load_tokenizers(tmp_path / "nowhere")


def test_load_corrupt_meta(tmp_path: Path) -> None:
    directory, _ = saved(tmp_path, KINDS[2])
    (directory / META_FILE).write_text("{not json")
    with pytest.raises(UserError, match="corrupt"):
        load_tokenizers(directory)


def test_load_unknown_kind(tmp_path: Path) -> None:
    directory, _ = saved(tmp_path, KINDS[2])
    meta = json.loads((directory / META_FILE).read_text())
    (directory / META_FILE).write_text(json.dumps({**meta, "kind": "bytes"}))
    with pytest.raises(UserError, match="unknown tokenizer kind 'bytes'"):
        load_tokenizers(directory)


def test_load_corrupt_or_missing_model(tmp_path: Path, kind: dict[str, str]) -> None:
    directory, _ = saved(tmp_path, kind)
    model = directory / json.loads((directory / META_FILE).read_text())["src"]
    model.write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match=f"{model.name}: not a valid"):
        load_tokenizers(directory)
    model.unlink()
    with pytest.raises(UserError, match="missing"):
        load_tokenizers(directory)
