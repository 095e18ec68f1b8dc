"""Dynamic batching: many small requests become one batched search.

Requests for one model wait in a bounded queue. Its worker thread takes the first one,
then keeps collecting until the batch holds ``batch_tokens`` source tokens or
``max_batch`` requests, or ``max_wait_ms`` has passed since the first arrived:

    request --submit--> queue --worker: collect--> batch --group by options-->
        Translator.translate_ids (one call per group) --split--> each request's future

Requests with the same decoding options are decoded together in one call; a seeded
request (sampling) is decoded alone, so its draws do not depend on its neighbours.
Decoding happens on the worker thread, never on the server's event loop (torch releases
the GIL while it computes). A bad request fails alone: if a group fails, each of its
requests is retried on its own, and the worker carries on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from attnmt.config import DecodeOptions
from attnmt.errors import UserError
from attnmt.serve.limits import Limits
from attnmt.translate.schema import Translation
from attnmt.translate.translator import Translator

log = logging.getLogger("attnmt.serve")


class QueueFull(Exception):
    """The model's queue holds `queue_size` requests already."""


@dataclass(eq=False)
class Job:
    """One request: its sources as token ids, its options, and where the answer goes."""

    ids: list[list[int]]
    options: DecodeOptions  # how to decode, seed included
    heads: bool = False  # also every layer's and head's attention
    future: Future[list[Translation]] = field(default_factory=Future)

    @property
    def tokens(self) -> int:
        return sum(len(row) for row in self.ids)

    def group_key(self) -> tuple[Any, ...]:
        """Jobs with equal keys are decoded in one call; a seeded job has its own key."""
        if self.options.seed is not None:
            return ("alone", id(self))
        return (self.options, self.heads)


_STOP = object()  # put on the queue by close(): the worker finishes what came before


class Batcher:
    """A worker thread that decodes one model's requests in batches."""

    def __init__(self, name: str, translator: Translator, limits: Limits) -> None:
        self.name = name
        self.translator = translator
        self.limits = limits
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=limits.queue_size)
        self._thread = threading.Thread(target=self._work, name=f"attnmt-{name}", daemon=True)
        self.batches = 0  # how many batches were decoded (for tests and /health)
        self._thread.start()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def submit(
        self, ids: Sequence[Sequence[int]], options: DecodeOptions, heads: bool = False
    ) -> Future:
        """Queue a request; its future gets the translations, in order, or the error.
        Raises QueueFull at once when the queue is full."""
        job = Job([list(row) for row in ids], options, heads)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFull(
                f"model {self.name!r} has {self.limits.queue_size} requests waiting"
            ) from None
        return job.future

    def close(self) -> None:
        """Finish every queued request, then stop the worker."""
        self._queue.put(_STOP)
        self._thread.join()

    # ------------------------------------------------------------------ the worker

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stop = self._collect(first)
            self._decode(batch)
            if stop:
                return

    def _collect(self, first: Job) -> tuple[list[Job], bool]:
        """`first` and whatever joins it within the wait, up to the token and size budget.
        Returns the batch and whether the stop sign was met."""
        batch, tokens = [first], first.tokens
        deadline = time.monotonic() + self.limits.max_wait_ms / 1000
        while len(batch) < self.limits.max_batch and tokens < self.limits.batch_tokens:
            remaining = deadline - time.monotonic()
            try:
                job = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if job is _STOP:
                return batch, True
            batch.append(job)
            tokens += job.tokens
        return batch, False

    def _decode(self, batch: list[Job]) -> None:
        """Decode the batch one group of equal options at a time; never raises."""
        live = [job for job in batch if job.future.set_running_or_notify_cancel()]  # timed out
        groups: dict[tuple[Any, ...], list[Job]] = {}
        for job in live:
            groups.setdefault(job.group_key(), []).append(job)
        for jobs in groups.values():
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

    def _run_group(self, jobs: list[Job]) -> None:
        """One Translator call for jobs with equal options; the results split back."""
        ids = [row for job in jobs for row in job.ids]
        results = self.translator.translate_ids(ids, jobs[0].options, heads=jobs[0].heads)
        start = 0
        for job in jobs:
            job.future.set_result(results[start : start + len(job.ids)])
            start += len(job.ids)


def _fail(job: Job, err: Exception) -> None:
    """Hand the error to the request; a bug (not a UserError) is logged with its trace."""
    if not isinstance(err, UserError):
        log.exception("decoding failed", exc_info=err)
    job.future.set_exception(err)
