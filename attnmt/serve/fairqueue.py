"""A bounded queue that serves its callers round-robin, so a busy one cannot starve another.

Each caller (an API key's name, or the client's address when the server has no keys) has
its own first-in-first-out lane. ``get`` takes the head of the first lane and moves that
lane to the back of the rotation:

    put a1 a2 a3 (caller a), b1 (caller b), c1 (caller c)
    get -> a1, b1, c1, a2, a3          # not a1 a2 a3 b1 c1, as one FIFO would

So a caller with many requests waiting gets one turn in every round, like everyone else.
The bound (``maxsize``) counts every lane together: it is the model's queue limit.

``get(skip=...)`` passes over the lanes of callers named in ``skip`` (the batcher skips a
caller that has its share of a batch already), and ``active(seconds)`` counts the callers
that put something within the last ``seconds``: how many share the model now.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Collection, Hashable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class Closed(Exception):
    """The queue was closed and everything put before was taken."""


class FairQueue(Generic[Item]):
    """Lanes of items by caller, taken round-robin; thread-safe."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._lanes: OrderedDict[Hashable, deque[Item]] = OrderedDict()  # rotation order
        self._size = 0
        self._closed = False
        self._ready = threading.Condition()
        self._seen: dict[Hashable, float] = {}  # caller -> when it last put an item

    def qsize(self) -> int:
        return self._size

    def put_nowait(self, caller: Hashable, item: Item) -> None:
        """Add `item` at the back of `caller`'s lane; queue.Full when `maxsize` items wait
        (or the queue is closed)."""
        with self._ready:
            if self._closed or self._size >= self.maxsize:
                raise queue.Full
            lane = self._lanes.get(caller)
            if lane is None:
                lane = self._lanes[caller] = deque()  # a new caller joins at the back
            lane.append(item)
            self._size += 1
            self._seen[caller] = time.monotonic()
            self._ready.notify_all()  # a waiter skipping other lanes may want this one

    def active(self, seconds: float) -> int:
        """How many callers put an item within the last `seconds` (or have one waiting)."""
        horizon = time.monotonic() - seconds
        with self._ready:
            for caller in [c for c, when in self._seen.items() if when < horizon]:
                if caller not in self._lanes:
                    del self._seen[caller]  # forgotten once idle: the map stays small
            return len(self._seen)

    def get(self, timeout: float | None = None, skip: Collection[Hashable] = ()) -> Item:
        """The next item in round-robin order from a caller not in `skip`, waiting up to
        `timeout` seconds (None: for ever). queue.Empty when the time passes; Closed when
        closed and empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while (caller := self._next_lane(skip)) is None:
                if self._closed:  # nothing more will come: the skipped lanes are all left
                    raise queue.Empty if self._size else Closed
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise queue.Empty
                self._ready.wait(remaining)
            lane = self._lanes[caller]
            item = lane.popleft()
            if lane:
                self._lanes.move_to_end(caller)  # its next item waits for the others' turn
            else:
                del self._lanes[caller]
            self._size -= 1
            return item

    def _next_lane(self, skip: Collection[Hashable]) -> Hashable | None:
        """The first caller in the rotation with an item and not in `skip` (lock held)."""
        return next((caller for caller in self._lanes if caller not in skip), None)

    def close(self) -> None:
        """Refuse new items; `get` raises Closed once the waiting ones are taken."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
