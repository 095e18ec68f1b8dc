"""Search: turn a model's p(y_t | y_<t, x) into output sentences, one token at a time.

Three ways to choose the next token: greedy search (:func:`greedy`), beam search
(:func:`beam_search`) and sampling (:func:`sample`); :func:`decode` picks one as a
:class:`attnmt.config.DecodeOptions` says. Every search takes its settings from one
``DecodeOptions`` and works on any model with the interface of
:mod:`attnmt.models.interface`.

Everything is batched. The sentences × beams (or samples) of a batch are the rows of
one tensor. The source is encoded, and its attention keys projected, once; beams then
follow their origins with ``state.index_select``. Each step

    1. runs the decoder on every live row                    model.step
    2. forbids what the rules forbid (min/max length, PAD,   rules.constrain
       BOS, repeated n-grams, the unknown piece if asked)
       by setting it to -inf
    3. chooses tokens; rows that chose EOS become Hypotheses
    4. drops the rows of sentences that are finished, so later steps do less work.

This package knows nothing of tokenizers or files: it maps id tensors to lists of
:class:`Hypothesis`.
"""

from attnmt.search.beam import beam_search
from attnmt.search.decode import decode, length_batches
from attnmt.search.ranking import Hypothesis
from attnmt.search.sampling import greedy, sample

__all__ = ["Hypothesis", "beam_search", "decode", "greedy", "length_batches", "sample"]
