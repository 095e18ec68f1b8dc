"""A bounded queue that serves its callers round-robin, so a busy one cannot starve another.

Each caller (an API key's name, or the client's address when the server has no keys) has
its own first-in-first-out lane. ``get`` takes the head of the first lane and moves that
lane to the back of the rotation:

    put a1 a2 a3 (caller a), b1 (caller b), c1 (caller c)
    get -> a1, b1, c1, a2, a3          # not a1 a2 a3 b1 c1, as one FIFO would

So a caller with many requests waiting gets one turn in every round, like everyone else.
The bound (``maxsize``) counts every lane together: it is the model's queue limit.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Hashable
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
            self._ready.notify()

    def get(self, timeout: float | None = None) -> Item:
        """The next item in round-robin order, waiting up to `timeout` seconds (None: for
        ever). queue.Empty when the time passes; Closed when closed and empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while not self._size:
                if self._closed:
                    raise Closed
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise queue.Empty
                self._ready.wait(remaining)
            caller, lane = next(iter(self._lanes.items()))
            item = lane.popleft()
            if lane:
                self._lanes.move_to_end(caller)  # its next item waits for the others' turn
            else:
                del self._lanes[caller]
            self._size -= 1
            return item

    def close(self) -> None:
        """Refuse new items; `get` raises Closed once the waiting ones are taken."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
