"""Tokenizers: text to ids and back, one per side, with the special ids of attnmt.special.

Three kinds, chosen by ``data.tokenizer``:

- ``sentencepiece``: subwords (BPE or unigram) learned from the training text; a piece
  starting with ``▁`` begins a word. The usual choice for translation.
- ``word``: whitespace-separated words, the ``data.vocab_size`` most frequent kept.
- ``char``: single characters, spaces included.

:func:`train_tokenizers` learns them from ``data.train`` and saves them in a folder;
:func:`load_tokenizers` reads them back. The folder holds ``tokenizers.json`` (which kind,
which file per side) and the model files, named relative to it, so a run directory can
be moved. With ``data.joint_vocab`` both sides share one file and one vocabulary.

Pieces (:meth:`Tokenizer.to_pieces`, for attention plots) follow sentencepiece's
convention for every kind: a piece that begins a word starts with ``▁``. That lets
:func:`merge_pieces` find the words of any tokenizer's pieces.
"""

from __future__ import annotations

import hashlib
import io
import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import sentencepiece as spm

from attnmt.config import DataConfig
from attnmt.data.text import read_parallel
from attnmt.errors import UserError
from attnmt.files import write_bytes_atomic
from attnmt.special import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID

WORD_START = "\u2581"  # "▁": sentencepiece's mark for the start of a word
UNK_TEXT = "\u2047"  # "⁇": how decode shows an unknown token, as sentencepiece does
CONTROL_IDS = frozenset({PAD_ID, BOS_ID, EOS_ID})  # dropped by decode
META_FILE = "tokenizers.json"
SPM_MAX_SENTENCES = 2_000_000  # sentencepiece trains on a random sample of at most this many
SPM_SEED = 1  # sentencepiece's sampling seed: the same corpus gives the same model ...
SPM_THREADS = 4  # ... on any machine (unigram's sums depend on how the work is split)


class Tokenizer(ABC):
    """One side's tokenizer and vocabulary; ids 0-3 are PAD, UNK, BOS and EOS."""

    kind: ClassVar[str]  # the data.tokenizer value
    suffix: ClassVar[str]  # file name ending of a saved model
    vocab_size: int

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without BOS or EOS; unknown tokens become UNK_ID."""

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` of each text (sentencepiece encodes the whole list in one call)."""
        return [self.encode(text) for text in texts]

    @abstractmethod
    def surfaces(self, text: str) -> list[str]:
        """The text each token of ``encode(text)`` stands for, one string per token
        (whitespace around it may be kept): what the user wrote where the model read the
        unknown piece."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Detokenised text; PAD, BOS and EOS are dropped (it does not stop at EOS)."""

    @abstractmethod
    def to_pieces(self, ids: Sequence[int]) -> list[str]:
        """One display string per id; a piece that starts a word begins with ``▁``."""

    @abstractmethod
    def to_bytes(self) -> bytes:
        """The saved model file's content."""

    def fingerprint(self) -> str:
        """sha256 of the kind and the model: equal fingerprints tokenize identically."""
        return hashlib.sha256(self.kind.encode() + b"\0" + self.to_bytes()).hexdigest()


# ---------------------------------------------------------------------------
# Sentencepiece


class SentencePieceTokenizer(Tokenizer):
    """Subword units from a trained sentencepiece model (Kudo & Richardson 2018)."""

    kind = "sentencepiece"
    suffix = ".model"

    def __init__(self, model: bytes) -> None:
        self._sp = spm.SentencePieceProcessor(model_proto=model)
        ids = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if ids != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ValueError(f"special ids are {ids}, expected {(PAD_ID, UNK_ID, BOS_ID, EOS_ID)}")
        self.vocab_size = self._sp.vocab_size()

    def encode(self, text: str) -> list[int]:
        return list(self._sp.encode(text, out_type=int))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        # One thread: attnmt.data.preprocess runs one encoder per worker process.
        return list(self._sp.encode(list(texts), out_type=int, num_threads=1))

    def surfaces(self, text: str) -> list[str]:
        # the proto (it needs protobuf) has each piece's surface: "日本" where id_to_piece
        # says "<unk>"
        return [piece.surface for piece in self._sp.encode(text, out_type="proto").pieces]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._sp.decode([i for i in map(int, ids) if i not in CONTROL_IDS]))

    def to_pieces(self, ids: Sequence[int]) -> list[str]:
        return [str(self._sp.id_to_piece(i)) for i in map(int, ids)]

    def to_bytes(self) -> bytes:
        return bytes(self._sp.serialized_model_proto())


def _train_sentencepiece(texts: Iterable[str], config: DataConfig) -> SentencePieceTokenizer:
    """Learn a sentencepiece model in memory from `texts`."""
    model = io.BytesIO()
    sentences = _RememberError(texts)
    spm.set_random_generator_seed(SPM_SEED)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            model_type=config.spm_type,
            vocab_size=config.vocab_size,
            hard_vocab_limit=False,  # a small corpus may yield fewer pieces: not an error
            input_sentence_size=SPM_MAX_SENTENCES,
            shuffle_input_sentence=True,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            num_threads=SPM_THREADS,
            minloglevel=2,  # warnings and errors only
        )
    except RuntimeError as err:
        if sentences.error is not None:  # our reader failed, e.g. bad UTF-8: report that
            raise sentences.error from None
        reason = str(err).strip().splitlines()[0].rsplit("] ", 1)[-1]
        raise UserError(
            f"sentencepiece could not train on data.train "
            f"(data.vocab_size={config.vocab_size}): {reason or 'empty training text?'}"
        ) from None
    return SentencePieceTokenizer(model.getvalue())


class _RememberError:
    """Iterate `texts`, keeping any UserError, which sentencepiece would turn into text."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.texts = texts
        self.error: UserError | None = None

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self.texts
        except UserError as err:
            self.error = err
            raise


# ---------------------------------------------------------------------------
# Word and character vocabularies


class VocabTokenizer(Tokenizer):
    """A list of pieces, the id being the position; the first four are SPECIAL_TOKENS.

    Subclasses say how text splits into pieces and how pieces join back into text.
    """

    suffix = ".vocab.json"

    def __init__(self, pieces: Sequence[str]) -> None:
        if tuple(pieces[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"a vocabulary must start with {SPECIAL_TOKENS}")
        self.pieces = list(pieces)
        self._ids = {piece: i for i, piece in enumerate(self.pieces)}
        self.vocab_size = len(self.pieces)

    @staticmethod
    @abstractmethod
    def split(text: str) -> list[str]:
        """Text to pieces."""

    @staticmethod
    @abstractmethod
    def join(pieces: list[str]) -> str:
        """Pieces to text; the inverse of split up to whitespace normalisation."""

    @abstractmethod
    def display(self, piece: str) -> str:
        """How a (non-control) piece is shown by to_pieces."""

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int) -> VocabTokenizer:
        """Keep the vocab_size - 4 most frequent pieces of `texts` (ties: alphabetical)."""
        counts = Counter(piece for text in texts for piece in cls.split(text))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        kept = [piece for piece, _ in ranked[: vocab_size - len(SPECIAL_TOKENS)]]
        return cls([*SPECIAL_TOKENS, *kept])

    def _piece(self, i: int) -> str:
        if not 0 <= i < self.vocab_size:
            raise IndexError(f"token id {i} is outside the vocabulary of {self.vocab_size}")
        return self.pieces[i]

    def encode(self, text: str) -> list[int]:
        return [self._ids.get(piece, UNK_ID) for piece in self.split(text)]

    def surfaces(self, text: str) -> list[str]:
        return self.split(text)

    def decode(self, ids: Sequence[int]) -> str:
        kept = [i for i in map(int, ids) if i not in CONTROL_IDS]
        return self.join([UNK_TEXT if i == UNK_ID else self._piece(i) for i in kept])

    def to_pieces(self, ids: Sequence[int]) -> list[str]:
        pieces = [(i, self._piece(i)) for i in map(int, ids)]
        return [piece if i in CONTROL_IDS else self.display(piece) for i, piece in pieces]

    def to_bytes(self) -> bytes:
        return json.dumps({"kind": self.kind, "pieces": self.pieces}, ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> VocabTokenizer:
        saved = json.loads(data.decode("utf-8"))
        if saved.get("kind") != cls.kind:
            raise ValueError(f"kind is {saved.get('kind')!r}, expected {cls.kind!r}")
        return cls(saved["pieces"])


class WordTokenizer(VocabTokenizer):
    """Whitespace-separated words; decode joins them with single spaces."""

    kind = "word"

    @staticmethod
    def split(text: str) -> list[str]:
        return text.split()

    @staticmethod
    def join(pieces: list[str]) -> str:
        return " ".join(pieces)

    def display(self, piece: str) -> str:
        return WORD_START + piece  # every word piece begins a word


class CharTokenizer(VocabTokenizer):
    """Characters; runs of whitespace become one space, itself a token (shown as ``▁``)."""

    kind = "char"

    @staticmethod
    def split(text: str) -> list[str]:
        return list(" ".join(text.split()))

    @staticmethod
    def join(pieces: list[str]) -> str:
        return "".join(pieces)

    def display(self, piece: str) -> str:
        return WORD_START if piece == " " else piece


# ---------------------------------------------------------------------------
# Training, saving, loading

_LOADERS: dict[str, Callable[[bytes], Tokenizer]] = {
    "sentencepiece": SentencePieceTokenizer,
    "word": WordTokenizer.from_bytes,
    "char": CharTokenizer.from_bytes,
}


def _train_one(texts: Iterable[str], config: DataConfig) -> Tokenizer:
    if config.tokenizer == "sentencepiece":
        return _train_sentencepiece(texts, config)
    builder = WordTokenizer if config.tokenizer == "word" else CharTokenizer
    return builder.build(texts, config.vocab_size)


def _side(config: DataConfig, side: int) -> Iterator[str]:
    """One side (0 source, 1 target) of the training text."""
    return (pair[side] for pair in read_parallel(config.train, "train"))


def _both_sides(config: DataConfig) -> Iterator[str]:
    """Source and target sentences of the training text, for a joint vocabulary."""
    return (text for pair in read_parallel(config.train, "train") for text in pair)


def train_tokenizers(config: DataConfig, directory: Path) -> tuple[Tokenizer, Tokenizer]:
    """Learn source and target tokenizers from ``config.train`` and save them in `directory`.

    With ``config.joint_vocab`` one tokenizer is learned from both sides and returned twice.
    """
    if config.joint_vocab:
        joint = _train_one(_both_sides(config), config)
        src_tok, tgt_tok = joint, joint
    else:
        src_tok = _train_one(_side(config, 0), config)
        tgt_tok = _train_one(_side(config, 1), config)
    save_tokenizers(src_tok, tgt_tok, Path(directory))
    return src_tok, tgt_tok


def save_tokenizers(src_tok: Tokenizer, tgt_tok: Tokenizer, directory: Path) -> None:
    """Write both tokenizers and ``tokenizers.json`` (kind and relative file names)."""
    if src_tok.kind != tgt_tok.kind:
        raise ValueError("source and target tokenizers must be of one kind")
    if src_tok is tgt_tok:
        files = {"src": "joint" + src_tok.suffix, "tgt": "joint" + src_tok.suffix}
    else:
        files = {"src": "src" + src_tok.suffix, "tgt": "tgt" + tgt_tok.suffix}
    write_bytes_atomic(directory / files["src"], src_tok.to_bytes())
    write_bytes_atomic(directory / files["tgt"], tgt_tok.to_bytes())
    meta = {"kind": src_tok.kind, **files}
    write_bytes_atomic(directory / META_FILE, json.dumps(meta, indent=2).encode() + b"\n")


def _load_one(directory: Path, file_name: str, kind: str) -> Tokenizer:
    path = directory / file_name
    if Path(file_name).name != file_name or not path.is_file():
        raise UserError(f"{directory / META_FILE}: tokenizer file {file_name!r} is missing")
    try:
        return _LOADERS[kind](path.read_bytes())
    except (RuntimeError, ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a valid {kind} tokenizer ({err})") from None


def load_tokenizers(directory: Path) -> tuple[Tokenizer, Tokenizer]:
    """The (source, target) tokenizers saved in `directory` by :func:`train_tokenizers`."""
    meta_path = Path(directory) / META_FILE
    if not meta_path.is_file():
        raise UserError(f"no tokenizers in {directory}: {META_FILE} is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        kind, src_file, tgt_file = meta["kind"], meta["src"], meta["tgt"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{meta_path}: corrupt; expected keys kind, src and tgt") from None
    if kind not in _LOADERS:
        raise UserError(
            f"{meta_path}: unknown tokenizer kind {kind!r}; known: {', '.join(_LOADERS)}"
        )
    src_tok = _load_one(Path(directory), src_file, kind)
    tgt_tok = src_tok if tgt_file == src_file else _load_one(Path(directory), tgt_file, kind)
    return src_tok, tgt_tok


# ---------------------------------------------------------------------------
# Pieces to words


def merge_pieces(pieces: Sequence[str]) -> list[list[int]]:
    """Group piece positions into words, e.g. to sum attention over a word's subwords.

    A piece starting with ``▁`` begins a new word (sentencepiece; every word-level piece;
    the space of the char level, which joins the word after it). The first piece and the
    control tokens ``<pad> <s> </s>`` also stand apart; any other piece continues the
    current word.

    >>> merge_pieces(["▁The", "▁ca", "t", "</s>"])
    [[0], [1, 2], [3]]
    """
    controls = {SPECIAL_TOKENS[i] for i in CONTROL_IDS}
    words: list[list[int]] = []
    for i, piece in enumerate(pieces):
        begins = i == 0 or piece.startswith(WORD_START) or piece in controls
        if begins or pieces[i - 1] in controls:
            words.append([i])
        else:
            words[-1].append(i)
    return words
