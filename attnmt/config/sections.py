"""The config's sections and every default, each field with a docstring.

:class:`Config` holds ``model``, ``data``, ``train`` and ``decode``; extra keys and wrong
types are rejected (see :mod:`attnmt.config.loading` for how files and overrides become
a Config).
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from attnmt.errors import UserError

RNNKind = Literal["rnn", "gru", "lstm"]
BridgeKind = Literal["zero", "last", "bridge"]
DecoderKind = Literal["none", "bahdanau", "luong"]
ScoreKind = Literal["dot", "scaled_dot", "general", "concat", "location", "multihead"]
WindowKind = Literal["global", "local-m", "local-p"]
ArchKind = Literal["rnn", "transformer"]


class ConfigError(UserError, ValueError):
    """A user mistake in a config file or override; the message is one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AttentionConfig(_Section):
    """The attention of the RNN decoder (and the heads of the Transformer)."""

    score: ScoreKind = "concat"
    """How a query is compared with each encoder state (see attnmt.nn.scores.SCORES)."""
    window: WindowKind = "global"
    """Which source positions may be attended: all, or Luong's local-m / local-p window."""
    window_half_width: int = Field(4, ge=1)
    """D in Luong et al. 2015 (3.2): a local window covers [p_t - D, p_t + D]."""
    attn_dim: int | None = Field(None, ge=1)
    """Inner size A of concat and multihead scores; None means model.hidden_dim."""
    heads: int = Field(4, ge=1)
    """Number of heads of the multihead score (attn_dim must divide by it), and of every
    attention of the Transformer (model.embed_dim must divide by it)."""
    max_src_len: int = Field(128, ge=1)
    """Longest source the location score can address (it has one weight row per position)."""

    @field_validator("score", mode="before")
    @classmethod
    def _self_is_an_architecture(cls, score: Any) -> Any:
        if score == "self":  # in the score family of the notes, but no score of an RNN decoder
            raise ValueError(
                "model.attention.score 'self' is not a score of the RNN decoder: "
                "self-attention is the Transformer's; set model.arch: transformer"
            )
        return score


class ModelConfig(_Section):
    """The model: its family, its sizes and, for the RNN family, its encoder, bridge,
    decoder and attention."""

    arch: ArchKind = "rnn"
    """Model family: rnn (an RNN encoder and the decoder model.decoder names) or
    transformer (Vaswani et al. 2017: self-attention encoder and decoder; d_model is
    model.embed_dim). Keys of the other family must stay at their defaults."""
    rnn: RNNKind = "gru"
    """Recurrent cell of encoder and decoder."""
    layers: int = Field(1, ge=1)
    """Encoder layers (and decoder layers unless decoder_layers is set)."""
    decoder_layers: int | None = Field(None, ge=1)
    """Decoder layers; None means the same as layers. The bridge handles a mismatch."""
    bidirectional: bool = True
    """Run the encoder in both directions; each direction gets hidden_dim / 2 units."""
    reverse_source: bool = False
    """Sutskever et al. 2014: feed each source sentence to the encoder backwards."""
    bridge: BridgeKind = "bridge"
    """Decoder's initial state: zero, last (copy the encoder's final state) or bridge
    (tanh(W h_final + b))."""
    decoder: DecoderKind = "bahdanau"
    """none (Sutskever/Cho, no attention), bahdanau (query s_{i-1}) or luong (query h_t)."""
    attention: AttentionConfig = Field(default_factory=AttentionConfig)
    """Attention score and window; ignored by decoder none."""
    input_feeding: bool = True
    """Luong decoder: feed the previous attentional vector h~_{t-1} to the RNN. Off enables
    the fast path that runs the decoder RNN over the whole target in one call."""
    feed_context: bool = False
    """Decoder none: feed the encoder summary at every step and to the output layer (Cho et
    al. 2014) instead of only using it as the initial state."""
    embed_dim: int = Field(256, ge=1)
    """Size E of source and target embeddings; for the Transformer also d_model, the size
    of every layer's input and output."""
    hidden_dim: int = Field(512, ge=2)
    """Size H of the decoder state; the encoder output has the same size (split across
    directions when bidirectional)."""
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    """Dropout on embeddings, between RNN layers and before the output layer; for the
    Transformer on embeddings and on every sub-layer's output before the residual sum."""
    tie_embeddings: bool = False
    """Share the target embedding matrix with the output layer (for the RNN family needs
    embed_dim equal to the decoder's output size, hidden_dim)."""
    ff_dim: int | None = Field(None, ge=1)
    """Transformer: inner size d_ff of each position-wise feed-forward network; None means
    4 × embed_dim (Vaswani et al. 2017: 2048 for d_model 512)."""
    positions: Literal["sinusoidal", "learned"] = "sinusoidal"
    """Transformer: fixed sinusoidal position vectors (any length), or one learned vector
    per position (at most 1024 positions)."""
    norm: Literal["pre", "post"] = "pre"
    """Transformer: layer normalisation before each sub-layer (pre, with a final one
    after the last layer) or after each residual sum (post, the original paper's). Pre is
    the default because it keeps an identity path from the output to every layer: the
    gradients reach the lower layers unscaled, so training is stable without a long
    warmup and tolerates larger learning rates (Xiong et al. 2020; Nguyen & Salazar 2019),
    which matters for short CPU budgets. Post can end slightly better when trained long
    with a careful warmup."""
    attention_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Transformer: dropout on the attention weights while training (0: none, as in
    Vaswani et al. 2017); the weights shown are always the undropped ones."""

    @model_validator(mode="after")
    def _check_combination(self) -> ModelConfig:
        foreign = [
            key for key in other_family_keys(self.arch) if _model_key(self, key) != _default(key)
        ]
        if foreign:
            other = "transformer" if self.arch == "rnn" else "rnn"
            keys = ", ".join(f"model.{key}" for key in foreign)
            raise ValueError(
                f"model.arch is {self.arch!r}, which does not use {keys} (keys of the {other} "
                f"family); remove them or set model.arch: {other}"
            )
        if self.arch == "transformer":
            if self.embed_dim % self.attention.heads:
                raise ValueError(
                    f"model.embed_dim ({self.embed_dim}) must divide by model.attention.heads "
                    f"({self.attention.heads}) for the Transformer"
                )
            return self
        if self.bidirectional and self.hidden_dim % 2:
            raise ValueError("model.hidden_dim must be even when model.bidirectional is true")
        if self.decoder == "none" and self.bridge == "zero" and not self.feed_context:
            raise ValueError(
                "model.decoder 'none' with model.bridge 'zero' never sees the source; "
                "use bridge 'last' or 'bridge', or set model.feed_context"
            )
        attn = self.attention
        if attn.score == "multihead" and (attn.attn_dim or self.hidden_dim) % attn.heads:
            raise ValueError("model.attention.attn_dim must divide by model.attention.heads")
        if self.tie_embeddings and self.embed_dim != self.hidden_dim:
            raise ValueError(
                "model.tie_embeddings needs model.embed_dim == model.hidden_dim "
                f"(got {self.embed_dim} and {self.hidden_dim})"
            )
        return self


RNN_KEYS = (
    "rnn",
    "bidirectional",
    "reverse_source",
    "bridge",
    "decoder",
    "input_feeding",
    "feed_context",
    "hidden_dim",
    "attention.score",
    "attention.window",
    "attention.window_half_width",
    "attention.attn_dim",
    "attention.max_src_len",
)
"""model keys only the RNN family reads."""

TRANSFORMER_KEYS = ("ff_dim", "positions", "norm", "attention_dropout")
"""model keys only the Transformer reads. layers, decoder_layers, embed_dim, dropout,
tie_embeddings and attention.heads serve both families."""


def other_family_keys(arch: str) -> tuple[str, ...]:
    """The model keys (dotted, under model.) that `arch` does not use."""
    return TRANSFORMER_KEYS if arch == "rnn" else RNN_KEYS


def _model_key(model: ModelConfig, key: str) -> Any:
    """The value of a model key (dotted, under model.)."""
    value: Any = model
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _default(key: str) -> Any:
    """The default of a model key (dotted, under model.)."""
    section: type[BaseModel] = ModelConfig
    *parents, name = key.split(".")
    for part in parents:
        section = typing.cast(type[BaseModel], section.model_fields[part].annotation)
    return section.model_fields[name].get_default(call_default_factory=True)


def without_other_family(model: Mapping[str, Any], arch: str) -> dict[str, Any]:
    """A model section (a mapping, as in YAML) without the keys `arch` does not use: for
    defaults shared by several presets (``attnmt compare``'s task sizes) that must not
    reach a family they do not apply to."""
    kept = copy.deepcopy(dict(model))
    for key in other_family_keys(arch):
        *parents, name = key.split(".")
        node: Any = kept
        for part in parents:
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, dict) and name in node:
            del node[name]
    return kept


class SplitPaths(_Section):
    src: str | None = None
    """Source-side text file, one sentence per line (.gz read directly)."""
    tgt: str | None = None
    """Target-side text file, line-aligned with src."""
    tsv: str | None = None
    """Alternative to src/tgt: one file of `source<TAB>target` lines."""

    @model_validator(mode="after")
    def _one_form(self) -> SplitPaths:
        pair = self.src is not None or self.tgt is not None
        if pair and self.tsv is not None:
            raise ValueError("give either src and tgt, or tsv, not both")
        if pair and (self.src is None or self.tgt is None):
            raise ValueError("src and tgt must be given together")
        return self

    @property
    def given(self) -> bool:
        return self.tsv is not None or self.src is not None


class DataConfig(_Section):
    """The corpora (one sentence per line, or one pair per TSV line), their tokenizer and
    vocabulary, and which task the pairs are."""

    train: SplitPaths = Field(default_factory=SplitPaths)
    """Training corpus."""
    dev: SplitPaths = Field(default_factory=SplitPaths)
    """Development corpus: validation loss, BLEU and chrF, early stopping."""
    test: SplitPaths = Field(default_factory=SplitPaths)
    """Optional test corpus, used by `attnmt evaluate` and `attnmt compare` when given."""
    tokenizer: Literal["sentencepiece", "word", "char"] = "sentencepiece"
    """Subword sentencepiece, whitespace words, or characters."""
    spm_type: Literal["bpe", "unigram"] = "bpe"
    """Sentencepiece model type."""
    joint_vocab: bool = True
    """One vocabulary (and tokenizer) shared by both sides, or one per side."""
    vocab_size: int = Field(8000, ge=8)
    """Target vocabulary size (for word/char: the cap, most frequent kept)."""
    max_len: int = Field(100, ge=1)
    """Training pairs with more tokens than this on either side are dropped (and counted)."""
    drop_empty: bool = True
    """Drop training pairs with an empty side (and count them); False makes them an error."""
    task: Literal["translation", "dialogue", "dialogue_backward"] = "translation"
    """translation; dialogue: each source is the previous turns and a message joined by
    " ||| ", each target the reply (`attnmt data chitchat`); `attnmt chat` needs a
    dialogue run, and `attnmt evaluate` then adds the dialogue metrics (docs/chat.md).
    dialogue_backward: the pairs turned round, each source a reply and each target the
    user's message before it (`attnmt data chitchat` writes them to backward/): a
    backward model p(S|T), which reranks a dialogue run's replies (`--rerank`) and
    cannot chat itself."""
    context_turns: int = Field(0, ge=0)
    """Dialogue: how many turns before the message each source holds (`attnmt data
    chitchat --context N`); `attnmt chat` feeds the model as many."""


class TrainConfig(_Section):
    """How to train: budget, batches, optimizer and schedule, validation, checkpoints and
    the device."""

    max_steps: int = Field(100_000, ge=1)
    """Stop after this many optimizer steps."""
    max_minutes: float | None = Field(None, gt=0)
    """Stop after this much wall-clock training time; None means no limit."""
    batch_tokens: int = Field(4096, ge=1)
    """Token budget of a batch (max of source and target tokens, padding included)."""
    optimizer: Literal["adam", "adamw"] = "adam"
    """Adam, or AdamW with decoupled weight decay."""
    lr: float = Field(1e-3, gt=0)
    """Peak learning rate."""
    weight_decay: float = Field(0.0, ge=0)
    """Weight decay (decoupled for adamw)."""
    schedule: Literal["constant", "inverse_sqrt", "plateau", "cosine"] = "constant"
    """Learning-rate schedule after warmup."""
    warmup_steps: int = Field(0, ge=0)
    """Linear warmup steps (all schedules)."""
    clip_norm: float = Field(1.0, ge=0)
    """Clip the gradient's global norm to this; 0 disables clipping."""
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    """Label smoothing of the cross-entropy loss."""
    teacher_forcing: float = Field(1.0, ge=0, le=1)
    """Probability of feeding the gold previous token; below 1 is scheduled sampling."""
    seed: int = 1
    """Seed of parameters, dropout and batch order."""
    validate_every: int = Field(1000, ge=1)
    """Validate (and checkpoint) every this many steps."""
    patience: int = Field(10, ge=0)
    """Stop after this many validations without improvement; 0 disables early stopping."""
    metric: Literal["bleu", "chrf", "loss"] = "bleu"
    """Dev metric for early stopping and the best checkpoint."""
    keep_last: int = Field(2, ge=1)
    """How many recent checkpoints to keep besides the best."""
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    """Where to train; auto picks CUDA, then MPS, then CPU."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Autocast precision; auto is bf16 on CUDA, and on CPUs where it measures faster."""
    threads: int | None = Field(None, ge=1)
    """CPU threads for torch; None leaves torch's default."""
    log_every: int = Field(100, ge=1)
    """Write training metrics every this many steps."""
    dev_beam: int = Field(1, ge=1)
    """Beam size for dev BLEU/chrF during training (1 = greedy, the fastest)."""
    dev_max_sentences: int | None = Field(None, ge=1)
    """Decode at most this many dev sentences for BLEU during training; None decodes all."""
    compile: bool = False
    """torch.compile the training forward pass. Opt-in: it pays off only where the
    benchmark measured it faster (see BENCHMARKS.md); compiling takes minutes."""
    data_workers: int | None = Field(None, ge=1)
    """Processes that tokenize the training corpus; None: one per CPU core, at most 8.
    A corpus of at most 10,000 pairs is tokenized in the main process."""


INT32_MAX = 2**31 - 1
"""The largest count or length a decoding option may hold: it must fit the int tensors
search builds from it (a larger one, e.g. a min_len of 2**64 sent to the server, was a
500 before; the server's own limits, such as --max-beam, are far smaller)."""
RATIO_MAX = 1e6
"""The largest min_len_ratio: beyond it min_len is the bound anyway. (max_len_ratio may
be infinite: no bound but max_len.)"""


class DecodeOptions(_Section):
    """How to decode: the one typed object that travels unchanged from the edge (the CLI,
    the Python API, the chatbot, evaluation, compare, the server) to search. A run's
    ``decode`` section gives the defaults; :func:`attnmt.config.decode_options` applies a
    caller's overrides once, validated. Frozen: nothing changes it on the way."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    beam: int = Field(5, ge=1, le=INT32_MAX)
    """Beam size; 1 is greedy search."""
    n_best: int = Field(1, ge=1, le=INT32_MAX)
    """Hypotheses returned per input (at most beam)."""
    alpha: float = Field(0.6, ge=0)
    """GNMT length penalty lp(Y) = ((5 + |Y|) / 6)^alpha; 0 disables it."""
    beta: float = Field(0.0, ge=0)
    """GNMT coverage penalty weight; 0 disables it."""
    min_len: int = Field(1, ge=0, le=INT32_MAX)
    """Shortest output in tokens (EOS is blocked before)."""
    min_len_ratio: float = Field(0.0, ge=0, le=RATIO_MAX)
    """Shortest output as a multiple of the source length."""
    max_len: int = Field(200, ge=1, le=INT32_MAX)
    """Longest output in tokens."""
    max_len_ratio: float = Field(2.0, gt=0)
    """Longest output as a multiple of the source length (plus 5 tokens)."""
    no_repeat_ngram: int = Field(0, ge=0, le=INT32_MAX)
    """Block any n-gram of this size from repeating; 0 disables it."""
    batch_tokens: int = Field(4000, ge=1, le=INT32_MAX)
    """Source-token budget of a decoding batch, counted once per row (the beam, or the
    n_best samples): at beam 5 a batch holds about batch_tokens / 5 source tokens. Small
    enough to keep peak memory down, large enough to keep the speed (BENCHMARKS.md,
    "Issue 11, third pass")."""
    sample: bool = False
    """Sample instead of searching."""
    temperature: float = Field(1.0, ge=0.01, le=100.0)
    """Sampling temperature, from 0.01 (all but greedy) to 100 (all but uniform). Beyond
    those the logits over the temperature leave float32 (0 or inf), and a sampled row
    would be NaN: the fuzzer sent 3.4e38 to /chat and got a 500."""
    top_k: int = Field(0, ge=0, le=INT32_MAX)
    """Sample from the k most likely tokens; 0 means all."""
    top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling: the smallest set with this much probability."""
    seed: int | None = Field(None, ge=0, le=INT32_MAX)
    """Seeds sampling, so that the same call draws the same outputs; None: torch's global
    random state."""
    allow_unk: bool = True
    """Whether the output may contain the unknown piece <unk>; false forbids it at every
    step. A dialogue run's replies never contain it, whatever this says (docs/chat.md)."""

    @model_validator(mode="after")
    def _n_best_within_beam(self) -> DecodeOptions:
        if not self.sample and self.n_best > self.beam:
            raise ValueError(f"n_best ({self.n_best}) must be at most beam ({self.beam})")
        return self

    def rows_per_sentence(self) -> int:
        """Rows of the decoding batch each sentence takes: its beam when searching, its
        n_best samples when sampling. Batching by tokens counts these rows."""
        return self.n_best if self.sample else self.beam

    def sentence_budget(self) -> int:
        """Padded source tokens per decoding batch: ``batch_tokens`` counted once per row."""
        return max(1, self.batch_tokens // self.rows_per_sentence())


class RerankOptions(_Section):
    """MMI-bidi reranking of a dialogue run's candidate replies (Li et al. 2016,
    "A Diversity-Promoting Objective Function for Neural Conversation Models"):

        score(T) = (1 - λ) log p(T | S) + λ log p(S | T) + γ |T|

    T is a candidate reply, S the user's message (without the older context), p(T | S)
    the dialogue run (the forward model), p(S | T) a backward run (``data.task:
    dialogue_backward``) and |T| the reply's words. The forward run's ``rerank`` section
    holds the defaults; the backward run is named where reranking is asked for
    (``--rerank BACKWARD_RUN``). Frozen, like :class:`DecodeOptions`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mmi_weight: float = Field(0.5, ge=0, le=1)
    """λ: the weight of the backward model's log p(S | T); 0 ranks by the forward model
    alone, 1 by the backward model alone."""
    length_bonus: float = 0.0
    """γ: added per whitespace word of the reply, against the summed log-probabilities'
    preference for short replies; 0 adds nothing."""
    candidates: int = Field(10, ge=1)
    """N: candidate replies decoded per message (decode.n_best while reranking): N
    samples when decode.sample, else the N best of the beam (decode.beam must be >= N).
    Candidates with the same text are merged before they are scored."""


class Config(_Section):
    run_dir: str = "runs/default"
    """Directory holding checkpoints, vocabularies, logs and the resolved config."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    decode: DecodeOptions = Field(default_factory=DecodeOptions)
    rerank: RerankOptions = Field(default_factory=RerankOptions)
    """A dialogue run's MMI reranking, when a backward run is given (``--rerank``)."""

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="python")
