"""The batcher's queue: callers served round-robin, one bound for all, closing drains it;
and in the batcher itself, a quiet caller's request is decoded in the first batch even
behind a busy caller's many."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import SENTENCES, make_run

from attnmt.serve.fairqueue import Closed, FairQueue


def drain(lanes: FairQueue[str]) -> list[str]:
    taken = []
    while lanes.qsize():
        taken.append(lanes.get(timeout=0))
    return taken


def test_round_robin_across_callers() -> None:
    lanes: FairQueue[str] = FairQueue(maxsize=100)
    for item in ("a1", "a2", "a3"):
        lanes.put_nowait("a", item)
    lanes.put_nowait("b", "b1")
    lanes.put_nowait("c", "c1")
    assert drain(lanes) == ["a1", "b1", "c1", "a2", "a3"]


def test_a_caller_coming_back_joins_at_the_back() -> None:
    lanes: FairQueue[str] = FairQueue(maxsize=100)
    for caller, item in (("a", "a1"), ("a", "a2"), ("b", "b1"), ("b", "b2")):
        lanes.put_nowait(caller, item)
    assert lanes.get() == "a1"
    lanes.put_nowait("c", "c1")  # a newcomer waits for a's and b's turns in this round
    assert drain(lanes) == ["b1", "a2", "c1", "b2"]


def test_one_bound_for_every_lane_and_empty_waits() -> None:
    lanes: FairQueue[int] = FairQueue(maxsize=2)
    lanes.put_nowait("a", 1)
    lanes.put_nowait("b", 2)
    with pytest.raises(queue.Full):
        lanes.put_nowait("c", 3)
    assert drain(lanes) == [1, 2]
    with pytest.raises(queue.Empty):
        lanes.get(timeout=0.01)


def test_close_lets_the_waiting_items_out_first_then_wakes_a_waiter() -> None:
    lanes: FairQueue[int] = FairQueue(maxsize=4)
    lanes.put_nowait("a", 1)
    lanes.close()
    with pytest.raises(queue.Full):
        lanes.put_nowait("a", 2)
    assert lanes.get() == 1
    with pytest.raises(Closed):
        lanes.get()
    waiting: FairQueue[int] = FairQueue(maxsize=4)
    woken: list[str] = []

    def wait() -> None:
        try:
            waiting.get()
        except Closed:
            woken.append("closed")

    waiter = threading.Thread(target=wait)
    waiter.start()
    waiting.close()
    waiter.join(timeout=5)
    assert woken == ["closed"]


def held_batcher(tmp_path: Path, limits: Any) -> tuple[Any, Any, list[int], Any, Any]:
    """A tiny run's Batcher whose decoding waits at `gate` (`entered` is set once the
    worker is there); `seen` gets the number of sources of each decode call, in order."""
    from attnmt.serve.batcher import Batcher
    from attnmt.translate.translator import Translator

    translator = Translator.load(make_run(tmp_path / "run"), device="cpu")
    seen: list[int] = []
    gate, entered = threading.Event(), threading.Event()
    decode = translator.translate_ids

    def held(ids, options=None, *, heads=False):  # type: ignore[no-untyped-def]
        entered.set()
        gate.wait(timeout=30)
        seen.append(len(ids))
        return decode(ids, options, heads=heads)

    translator.translate_ids = held  # type: ignore[method-assign]
    return translator, Batcher("m", translator, limits), seen, gate, entered


def test_the_batcher_serves_a_quiet_caller_in_the_first_batch(tmp_path: Path) -> None:
    """A busy caller queues 6 requests, then a quiet caller 1, while the worker is held;
    with batches of 2, a FIFO would answer the quiet one in the 4th batch; round-robin
    puts it in the first, beside the busy caller's first."""
    from attnmt.serve.limits import Limits

    translator, batcher, seen, gate, entered = held_batcher(
        tmp_path, Limits(max_batch=2, max_wait_ms=0)
    )
    ids = [translator.src_tok.encode(sentence) for sentence in SENTENCES[:2]]
    blocker = batcher.submit([ids[0]], translator.decode, caller="busy")
    assert entered.wait(timeout=30)  # the worker decodes the blocker, held at the gate
    busy = [batcher.submit([ids[0]], translator.decode, caller="busy") for _ in range(6)]
    quiet = batcher.submit(ids[1:], translator.decode, caller="quiet")
    order: list[str] = []
    quiet.add_done_callback(lambda _: order.append("quiet"))
    for future in busy:
        future.add_done_callback(lambda _: order.append("busy"))
    gate.set()
    batcher.close()
    assert seen[:2] == [1, 2]  # the blocker alone, then a batch of two
    assert blocker.done() and all(f.done() for f in busy) and quiet.done()
    assert order[:2] in (["busy", "quiet"], ["quiet", "busy"])  # answered in one batch
    assert quiet.result()[0].text == translator.translate(SENTENCES[1]).text


def test_skip_passes_over_callers_and_active_counts_recent_ones() -> None:
    lanes: FairQueue[str] = FairQueue(maxsize=100)
    for item in ("a1", "a2", "b1"):
        lanes.put_nowait(item[0], item)
    assert lanes.active(60) == 2
    assert lanes.get(timeout=0, skip={"a"}) == "b1"
    with pytest.raises(queue.Empty):  # only a's items are left, and a is skipped
        lanes.get(timeout=0, skip={"a"})
    assert lanes.get(timeout=0) == "a1"
    assert lanes.active(0) == 1  # b put nothing since, and has nothing waiting: idle
    lanes.close()
    with pytest.raises(queue.Empty):  # closed, but a's item is still there for others
        lanes.get(timeout=None, skip={"a"})
    assert lanes.get(timeout=None) == "a2"
    with pytest.raises(Closed):
        lanes.get(timeout=None)


def test_light_callers_are_decoded_first_and_equal_loads_together() -> None:
    from attnmt.config import DecodeOptions
    from attnmt.serve.batcher import Job, light_first

    options = DecodeOptions()

    def job(caller: str, texts: int) -> Job:
        return Job([[5]] * texts, options, caller=caller)

    busy = [job("busy", 5) for _ in range(4)]
    quiet, other = job("quiet", 1), job("other", 2)
    calls = light_first([busy[0], quiet, busy[1], other, busy[2], busy[3]])
    assert calls == [[quiet, other], busy]  # 1 and 2 texts under the mean of 8: first
    equal = [job(name, 3) for name in "abc"]
    assert light_first(equal) == [equal]  # equal loads: one call, as without fairness
    alone = [job("a", 1), job("a", 9)]
    assert light_first(alone) == [alone]


def test_a_busy_caller_has_its_share_of_a_batch_while_another_waits(tmp_path: Path) -> None:
    """A busy caller queues six 5-text requests and a quiet caller one 1-text request
    while the worker is held; with a share of 10 texts, each batch holds two of the busy
    caller's requests, and the quiet one is decoded alone before them."""
    from attnmt.serve.limits import Limits

    translator, batcher, seen, gate, entered = held_batcher(
        tmp_path, Limits(max_wait_ms=0, fair_batch=10)
    )
    ids = [translator.src_tok.encode(sentence) for sentence in SENTENCES[:2]]
    blocker = batcher.submit([ids[0]], translator.decode, caller="busy")
    assert entered.wait(timeout=30)
    busy = [batcher.submit([ids[0]] * 5, translator.decode, caller="busy") for _ in range(6)]
    quiet = batcher.submit(ids[1:], translator.decode, caller="quiet")
    gate.set()
    batcher.close()
    assert seen == [1, 1, 10, 10, 10]  # the blocker; the quiet one alone; the busy in tens
    assert blocker.done() and all(f.done() for f in busy)
    assert quiet.result()[0].text == translator.translate(SENTENCES[1]).text
