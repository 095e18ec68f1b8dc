"""Dynamic batching: many small requests become one batched search.

Requests for one model wait in a bounded queue, one lane per caller (an API key, or the
client's address without keys) taken round-robin (:class:`FairQueue`), so one busy caller
cannot starve another. Its worker thread takes the first one, then keeps collecting until
the batch holds ``batch_tokens`` source tokens or ``max_batch`` requests, or
``max_wait_ms`` has passed since the first arrived:

    request --submit--> queue --worker: collect--> batch --group by options-->
        Translator.translate_ids (one call per group) --split--> each request's future

Requests with the same decoding options are decoded together in one call; a seeded
request (sampling) is decoded alone, so its draws do not depend on its neighbours.

Fairness goes past the round-robin lanes, because a request's latency is the batch being
decoded when it arrives plus its own batch, and both grow with their number of texts:
- while more than one caller is active (has sent a request in the last ``ACTIVE_S``
  seconds), a batch stops taking one caller's requests once they hold
  ``limits.fair_batch`` texts, so no batch is long because of one caller;
- within a batch, the callers with at most the batch's mean texts per caller are decoded
  first (together, by options), and the heavier callers after them, so a caller sending
  one text is not decoded as part of another's forty.
One caller alone, or callers with equal loads, batch exactly as without them.
Decoding happens on the worker thread, never on the server's event loop (torch releases
the GIL while it computes). A bad request fails alone: if a group fails, each of its
requests is retried on its own, and the worker carries on.

A dialogue model's chat requests (:class:`ChatJob`, from ``POST /chat``) go through the
same queue and thread: chats with equal options are answered in one
:meth:`Responder.replies` call (one decode, one backward pass). So the worker is the one
thread that ever runs the model, and /chat shares /translate's queue limit, batching
and timeout.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from attnmt.config import DecodeOptions
from attnmt.errors import UserError
from attnmt.serve.fairqueue import Closed, FairQueue
from attnmt.serve.limits import Limits
from attnmt.translate.chatbot import ChatReply, Responder
from attnmt.translate.schema import Translation
from attnmt.translate.translator import Translator

log = logging.getLogger("attnmt.serve")

ACTIVE_S = 10.0  # a caller that sent a request this recently shares the model


class QueueFull(Exception):
    """The model's queue holds `queue_size` requests already."""


@dataclass(eq=False)
class Job:
    """One request: its sources as token ids, its options, and where the answer goes."""

    ids: list[list[int]]
    options: DecodeOptions  # how to decode, seed included
    heads: bool = False  # also every layer's and head's attention
    future: Future[list[Translation]] = field(default_factory=Future)
    caller: Hashable = ""  # whose lane it waited in

    @property
    def tokens(self) -> int:
        return sum(len(row) for row in self.ids)

    @property
    def sentences(self) -> int:
        return len(self.ids)

    def group_key(self) -> tuple[Any, ...]:
        """Jobs with equal keys are decoded in one call; a seeded job has its own key."""
        if self.options.seed is not None:
            return ("alone", id(self))
        return ("translate", self.options, self.heads)


@dataclass(eq=False)
class ChatJob:
    """One chat request: what the dialogue model reads, its options, and where the reply
    goes."""

    source: str  # the context turns and the message, joined by the separator
    tokens: int  # the source's length in tokens (the batch budget counts it)
    options: DecodeOptions  # how to decode the candidates, seed included
    rerank: bool  # rerank them with the backward model
    future: Future[ChatReply] = field(default_factory=Future)
    caller: Hashable = ""  # whose lane it waited in

    def group_key(self) -> tuple[Any, ...]:
        """Chats with equal keys are answered in one call; a seeded one has its own key."""
        if self.options.seed is not None:
            return ("alone", id(self))
        return ("chat", self.options, self.rerank)

    sentences = 1  # one reply


# Told of each batch decoded: its requests, source tokens and sentences (the metrics).
BatchObserver = Callable[[int, int, int], None]


class Batcher:
    """A worker thread that decodes one model's requests in batches; `responder` (for a
    dialogue model) answers its chat requests; `observe` is told of every batch."""

    def __init__(
        self,
        name: str,
        translator: Translator,
        limits: Limits,
        responder: Responder | None = None,
        observe: BatchObserver | None = None,
    ) -> None:
        self.name = name
        self.translator = translator
        self.responder = responder
        self.limits = limits
        self.observe = observe
        self._queue: FairQueue[Job | ChatJob] = FairQueue(limits.queue_size)
        self._thread = threading.Thread(target=self._work, name=f"attnmt-{name}", daemon=True)
        self.batches = 0  # how many batches were decoded (for tests and /health)
        self._thread.start()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def submit(
        self,
        ids: Sequence[Sequence[int]],
        options: DecodeOptions,
        heads: bool = False,
        caller: Hashable = "",
    ) -> Future:
        """Queue a request in `caller`'s lane; its future gets the translations, in order,
        or the error. Raises QueueFull at once when the queue is full."""
        return self._put(Job([list(row) for row in ids], options, heads), caller)

    def submit_chat(
        self, source: str, options: DecodeOptions, rerank: bool, caller: Hashable = ""
    ) -> Future[ChatReply]:
        """Queue a chat request (`source`: what the model reads, from
        :meth:`Responder.source`) in `caller`'s lane; its future gets the
        :class:`ChatReply` or the error. Raises QueueFull at once when the queue is full."""
        if self.responder is None:
            raise ValueError(f"model {self.name!r} has no responder: it cannot chat")
        tokens = len(self.translator.src_tok.encode(source))
        return self._put(ChatJob(source, tokens, options, rerank), caller)

    def _put(self, job: Job | ChatJob, caller: Hashable) -> Future:
        job.caller = caller
        try:
            self._queue.put_nowait(caller, job)
        except queue.Full:
            raise QueueFull(
                f"model {self.name!r} has {self.limits.queue_size} requests waiting"
            ) from None
        return job.future

    def close(self) -> None:
        """Finish every queued request, then stop the worker; new ones are refused."""
        self._queue.close()
        self._thread.join()

    # ------------------------------------------------------------------ the worker

    def _work(self) -> None:
        while True:
            try:
                first = self._queue.get()
            except Closed:
                return
            batch, stop = self._collect(first)
            self._decode(batch)
            if stop:
                return

    def _collect(self, first: Job | ChatJob) -> tuple[list[Job | ChatJob], bool]:
        """`first` and whatever joins it within the wait, up to the token and size budget.
        Returns the batch and whether the queue was closed and emptied."""
        batch: list[Job | ChatJob] = [first]
        tokens = first.tokens
        shared = self._queue.active(ACTIVE_S) > 1
        texts: dict[Hashable, int] = {}  # each caller's texts in the batch
        full: set[Hashable] = set()  # callers with their share while others are active
        deadline = time.monotonic() + self.limits.max_wait_ms / 1000
        job = first
        while True:
            texts[job.caller] = texts.get(job.caller, 0) + job.sentences
            if shared and texts[job.caller] >= self.limits.fair_batch:
                full.add(job.caller)
            if len(batch) >= self.limits.max_batch or tokens >= self.limits.batch_tokens:
                break
            try:
                remaining = max(0.0, deadline - time.monotonic())
                job = self._queue.get(timeout=remaining, skip=full)
            except queue.Empty:
                break
            except Closed:
                return batch, True
            batch.append(job)
            tokens += job.tokens
        return batch, False

    def _decode(self, batch: list[Job | ChatJob]) -> None:
        """Decode the batch one group of equal options at a time; never raises."""
        live = [job for job in batch if job.future.set_running_or_notify_cancel()]  # timed out
        for jobs in light_first(live):
            try:
                self._run_group(jobs)
            except Exception as err:  # noqa: BLE001 - a request's error must not kill the worker
                if len(jobs) == 1:
                    _fail(jobs[0], err)
                    continue
                for job in jobs:  # find the culprit: each job on its own
                    try:
                        self._run_group([job])
                    except Exception as alone:  # noqa: BLE001
                        _fail(job, alone)
        self.batches += 1
        if self.observe is not None:
            sentences = sum(job.sentences for job in batch)
            self.observe(len(batch), sum(job.tokens for job in batch), sentences)

    def _run_group(self, jobs: list[Job | ChatJob]) -> None:
        """One call for jobs with equal group keys (all of one kind); results split back."""
        if isinstance(jobs[0], ChatJob):
            self._answer([job for job in jobs if isinstance(job, ChatJob)])
        else:
            self._translate([job for job in jobs if isinstance(job, Job)])

    def _translate(self, jobs: list[Job]) -> None:
        """One Translator call for translation jobs with equal options."""
        ids = [row for job in jobs for row in job.ids]
        results = self.translator.translate_ids(ids, jobs[0].options, heads=jobs[0].heads)
        start = 0
        for job in jobs:
            job.future.set_result(results[start : start + len(job.ids)])
            start += len(job.ids)

    def _answer(self, jobs: list[ChatJob]) -> None:
        """One Responder call for chat jobs with equal options: one decode of every
        candidate, one backward pass when reranking."""
        assert self.responder is not None  # submit_chat refuses a model without one
        sources = [job.source for job in jobs]
        replies = self.responder.replies(sources, jobs[0].options, rerank=jobs[0].rerank)
        for job, reply in zip(jobs, replies, strict=True):
            job.future.set_result(reply)


def light_first(jobs: list[Job | ChatJob]) -> list[list[Job | ChatJob]]:
    """The decoding calls for one batch, in order: the jobs of callers with at most the
    mean texts per caller first, grouped by options, then the heavier callers' jobs."""
    texts: dict[Hashable, int] = {}
    for job in jobs:
        texts[job.caller] = texts.get(job.caller, 0) + job.sentences
    mean = sum(texts.values()) / max(1, len(texts))
    calls: list[list[Job | ChatJob]] = []
    for heavy in (False, True):
        groups: dict[tuple[Any, ...], list[Job | ChatJob]] = {}
        for job in jobs:
            if (texts[job.caller] > mean) == heavy:
                groups.setdefault(job.group_key(), []).append(job)
        calls.extend(groups.values())
    return calls


def _fail(job: Job | ChatJob, err: Exception) -> None:
    """Hand the error to the request; a bug (not a UserError) is logged with its trace."""
    if not isinstance(err, UserError):
        log.exception("decoding failed", exc_info=err)
    job.future.set_exception(err)
