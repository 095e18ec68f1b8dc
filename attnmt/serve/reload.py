"""Reload without downtime: on SIGHUP, every model whose checkpoint file changed since it
was loaded is loaded again in the background and swapped in.

    kill -HUP $(pgrep -f 'attnmt serve')     # after replacing runs/a/checkpoints/best.pt

    SIGHUP --> a thread: for each model, stat(checkpoint) != at load? --> load it -->
           the event loop: swap (a new Batcher serves new requests) --> the old Batcher
           finishes its queue on the old model, then stops

A file counts as changed when its modification time, size or inode differ (an atomic
replace, ``os.replace``, makes a new inode). Requests queued or decoding at the swap
finish on the old model: they are in the old Batcher's queue, which is drained before it
closes. The swap runs on the event loop, between two requests, so a request never looks
up one model and submits to another. A failed load (a half-written or foreign file)
keeps the old model and prints why in one line; the next SIGHUP tries again. A backward
run given with ``--rerank`` is reloaded with its model, not on its own.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from attnmt.translate.chatbot import Responder
from attnmt.translate.translator import Translator

Loader = Callable[[str], tuple[Translator, Responder | None]]  # name -> the model, again


def stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a changed file: (modification time in ns, size, inode); None if gone."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class Reloader:
    """Watches each model's checkpoint file and reloads the changed ones into `app`."""

    def __init__(self, app: Any, checkpoints: Mapping[str, Path], load: Loader) -> None:
        self.app = app
        self.checkpoints = dict(checkpoints)
        self.load = load
        self._stamps = {name: stamp(path) for name, path in self.checkpoints.items()}
        self._one_at_a_time = threading.Lock()

    def changed(self) -> list[str]:
        """The models whose checkpoint file is not the one loaded."""
        stamps = self._stamps
        return [name for name, path in self.checkpoints.items() if stamp(path) != stamps[name]]

    def reload_changed(self) -> list[str]:
        """Load and swap in each changed model (blocking: run it off the event loop);
        the names swapped in."""
        swapped = []
        with self._one_at_a_time:
            for name in self.changed():
                seen = stamp(self.checkpoints[name])  # before loading: a later write reloads
                try:
                    translator, responder = self.load(name)
                except Exception as err:  # noqa: BLE001 - any failure keeps the old model
                    why = " ".join(str(err).split()) or type(err).__name__
                    say(f"reload of {name!r} failed, still serving the model loaded before: {why}")
                    continue
                self._swap(name, translator, responder)
                self._stamps[name] = seen
                swapped.append(name)
                say(f"reloaded {name!r} from {self.checkpoints[name]}")
        return swapped

    def _swap(self, name: str, translator: Translator, responder: Responder | None) -> None:
        """Swap on the app's event loop when it runs (between requests), else here."""
        swap = self.app.state.swap
        loop: asyncio.AbstractEventLoop | None = getattr(self.app.state, "loop", None)
        if loop is None or not loop.is_running():
            swap(name, translator, responder)
            return
        done = asyncio.run_coroutine_threadsafe(_call(swap, name, translator, responder), loop)
        done.result(timeout=60)

    def start(self) -> threading.Thread:
        """Reload in a background thread (what SIGHUP does)."""
        thread = threading.Thread(target=self.reload_changed, name="attnmt-reload", daemon=True)
        thread.start()
        return thread

    def on_sighup(self) -> None:
        """Install the SIGHUP handler (the main thread only; uvicorn leaves SIGHUP alone)."""
        signal.signal(signal.SIGHUP, lambda *_: self.start())


async def _call(function: Callable[..., None], *args: Any) -> None:
    function(*args)


def say(line: str) -> None:
    print(f"attnmt serve: {line}", file=sys.stderr, flush=True)
