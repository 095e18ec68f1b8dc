"""attnmt against Joey NMT, side by side: one run, one machine, every figure a ratio.

    python -m benchmarks.peer --quick            # the RNN: training speed, peak RSS (~22 min)
    python -m benchmarks.peer                    # + 30-min quality runs and decoding (~90 min)
    python -m benchmarks.peer --family transformer --quick       # + the RNN reference (~35 min)
    python -m benchmarks.peer --family transformer --seeds 1 2   # everything, two seeds (~3 h)
    python -m benchmarks.peer --family transformer --quick --window-minutes 1 --rounds 1 --no-record

``--family`` picks the pair of configs: the same model in each toolkit, trained on the same
data (Multi30k de->en, joint sentencepiece BPE 8k) with the same recipe.

- ``rnn``: attnmt's ``configs/multi30k_de_en_luong_concat.yaml`` and Joey's
  ``rnn_m30k.yaml``: biGRU 2x256 encoder, GRU 512 decoder, embeddings 256, dropout 0.3, the
  concat (additive) score queried with the decoder's current state and no input feeding.
  That is Joey's RNN decoder with ``attention: bahdanau`` and ``input_feeding: False`` (it
  calls the score Bahdanau's, but its recurrence is Luong's).
- ``transformer``: attnmt's ``configs/multi30k_de_en_transformer.yaml`` and Joey's
  ``transformer_m30k.yaml``: 3+3 layers, d 256, 4 heads, ff 1024, pre-norm, tied embeddings,
  warmup 400 then inverse square root, label smoothing 0.1, 4,096-token batches. attnmt's
  RNN reference (``luong_concat``) is timed in the same alternation of windows
  (``--with-rnn``, the default here), so one run gives both ratios: Transformer / Joey's
  Transformer and Transformer / RNN reference.

``--config`` runs another attnmt preset in place of the family's (for example
``multi30k_de_en_bahdanau.yaml``, Bahdanau's own decoder: query s_{i-1}, context fed into
the RNN). Joey comes from the peer scripts in ``../shared/peers/joeynmt``: ``setup.sh``
(venv ``/tmp/venv_joey``, data and BPE ``/tmp/joey_m30k``), then ``run.sh`` for each run.
Everything of a run goes to ``--work`` (default ``/tmp/attnmt_peer/<time>``): attnmt's runs,
Joey's logs (``joey/<tag>``, with run.sh's ``train.yaml``, whose ``model_dir`` is where Joey
trained, ``/tmp/joey_runs/<config>_<tag>``) and ``peer.json``. Every process gets 2 threads
(``OMP_NUM_THREADS=2``) and runs alone, one after the other; nothing else should run.

- Training speed: target tokens (EOS counted, padding not) over the seconds of training
  steps, validation and start-up excluded. Joey: the token count of the checkpoint it
  saves when the budget stops it, over the time from its first epoch's start to the
  interruption in its log (no validation inside a window). attnmt: the same ratio as
  ``attnmt train`` prints it. Windows alternate Joey, attnmt (, the RNN reference), for
  ``--rounds`` rounds; ``peer.json`` also keeps each toolkit's own per-interval rates.
- Peak RSS: ``/usr/bin/time -v`` of each training or decoding process.
- Quality and decoding (not with ``--quick``), once per ``--seeds`` seed: each toolkit
  trains ``--minutes`` (Joey: the whole process, start-up and validations included, as
  ``run.sh`` does; attnmt: ``train.max_minutes``, validations included, data preparation
  not), then decodes test_2016_flickr greedy and beam 5, in its own process, with the
  checkpoint of its best dev BLEU (Joey: ``DECODE_CKPT=best``, the best of its
  validations; attnmt: ``which="best"``, ``checkpoints/best.pt``, which training keeps by
  ``train.metric``, BLEU in both presets): sentences/s of the generation alone, BLEU with
  sacrebleu defaults.

Joey's configs as this benchmark runs them. run.sh trains a copy of ``$HERE/$CONFIG``, so
the benchmark writes its own copy of the family's config (``<work>/joey/seed<N>/``, same
name: run.sh names the run directory after it) and passes it as a path relative to the peer
folder. The copy changes only ``random_seed`` (the run's seed; the shipped configs say 42)
and, with ``--sentences``, the data folder and ``logging_freq`` (1: Joey wants
``validation_freq`` to be a multiple of it above it). run.sh then rewrites ``validation_freq``: in
the speed windows out of reach; in the quality runs the family's ``valid_freq``. That is
the one fix Joey's Transformer needs on a 2-core CPU. Joey only has a ``best.ckpt`` once it
has validated (it does not validate when the budget stops it), and at run.sh's default of
every 500 steps its Transformer may never validate in 30 minutes: its token batches count
``max(S, T) + 1`` per sentence, padding included, over sentences in random order (no length
bucketing), so its 4,096-token batches hold about 1,760 target tokens against attnmt's
3,850 (sorted by length; Multi30k's training set with the joint BPE), and at a few hundred
target tokens/s 30 minutes buy a few hundred steps. Validating every 200 steps gives
Joey's Transformer a few validations in such a run and leaves at most 200 steps at its end
unvalidated (attnmt also validates when its budget ends). Nothing else in either Joey
config is changed.

``--sentences N`` (smoke tests only) validates and decodes on the first N sentences of
the dev and test sets, so that untrained models, which decode to the length limit, finish
quickly, and lets Joey validate after a few steps (``--joey-valid-freq 2``); its figures
mean nothing and it never records.

Appends one section to BENCHMARKS.md (unless ``--no-record``), naming the family and both
configs, and writes the raw figures to ``<work>/peer.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import common
from benchmarks.peer.joey import JOEY

CONFIGS = common.ROOT / "configs"


@dataclass(frozen=True)
class Family:
    """The same model in both toolkits, and the issue's targets for it."""

    name: str  # as the section's title says it
    ours: Path  # attnmt's preset (--config replaces it)
    joey: Path  # Joey's config, in the peer folder
    valid_freq: int  # Joey's validation_freq (steps) in the quality runs
    speed_target: float  # attnmt / Joey training tokens/s, at least
    speed_goal: str  # the speed target as the table writes it
    decode_targets: dict[str, float] = field(default_factory=dict)  # sent/s ratios
    reference: Path | None = None  # attnmt's RNN reference, timed beside ours (--with-rnn)
    reference_target: float = 1.5  # attnmt / RNN reference training tokens/s, at least


RNN_REFERENCE = CONFIGS / "multi30k_de_en_luong_concat.yaml"
FAMILIES = {
    "rnn": Family(
        name="the RNN",
        ours=RNN_REFERENCE,
        joey=JOEY / "rnn_m30k.yaml",
        valid_freq=500,
        speed_target=3.0,
        speed_goal="≥ 3× (moonshot 5×)",
        decode_targets={"greedy": 3.0, "beam5": 3.0},
    ),
    "transformer": Family(
        name="the Transformer",
        ours=CONFIGS / "multi30k_de_en_transformer.yaml",
        joey=JOEY / "transformer_m30k.yaml",
        valid_freq=200,
        speed_target=5.0,
        speed_goal="≥ 5×",
        decode_targets={"beam5": 3.0},
        reference=RNN_REFERENCE,
    ),
}


def choose(
    family: str, config: str | None, with_rnn: bool | None
) -> tuple[Path, Path, Path | None]:
    """attnmt's config, Joey's config and attnmt's RNN reference (None: not timed) for
    `family`; `config` replaces attnmt's, `with_rnn` (None: the family's default) says
    whether the reference is timed."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    chosen = FAMILIES[family]
    if with_rnn and chosen.reference is None:
        raise ValueError(f"--with-rnn: the {family} family's model is the RNN reference itself")
    reference = chosen.reference if with_rnn is not False else None
    return Path(config) if config else chosen.ours, chosen.joey, reference
