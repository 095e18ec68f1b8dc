"""Record a real `attnmt chat` session in a pseudo-terminal, as Markdown.

    python benchmarks/chat_transcript.py --model runs/chitchat_luong > transcript.md

The messages are fixed below and were written before the model finished training; the
session runs once with a fixed seed and is printed as it happened (no reruns, no picking).
Each message waits for the prompt, so the transcript is exactly what a person would see.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import subprocess
import sys
import time

PROMPT = "you> "
MESSAGES = (
    "hi! how are you doing today?",
    "i'm good, i just got back from class. what are you studying?",
    "that sounds interesting. why did you choose it?",
    "do you have any plans for the weekend?",
    "what do you like to do for fun?",
    "what is your favorite food?",
    "/attention",
    "/reset",
    "what kind of music do you listen to?",
    "ok, i have to go now. bye!",
)


def record(command: list[str], messages: tuple[str, ...], timeout: float) -> str:
    """Run `command` in a pty, type each message at the prompt, end with Ctrl-D."""
    master, slave = pty.openpty()
    process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    screen = ""

    def wait_for_prompt(after: int) -> None:
        nonlocal screen
        deadline = time.monotonic() + timeout
        while PROMPT not in screen[after:]:
            if not select.select([master], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError(f"no prompt after {timeout} s:\n{screen}")
            screen += os.read(master, 4096).decode(errors="replace")

    wait_for_prompt(0)
    for message in messages:
        mark = len(screen)
        os.write(master, (message + "\n").encode())
        wait_for_prompt(mark + len(message))
    os.write(master, b"\x04")
    process.wait(timeout=timeout)
    while select.select([master], [], [], 0.2)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk.decode(errors="replace")
    os.close(master)
    return screen.replace("\r\n", "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a dialogue run directory")
    parser.add_argument("--seed", default="1", help="sampling seed (default: 1)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per reply")
    parser.add_argument("options", nargs="*", help="more `attnmt chat` options, after --")
    args = parser.parse_args()
    command = [sys.executable, "-m", "attnmt.cli", "chat", "--model", args.model]
    command += ["--seed", args.seed, "--threads", "1", *args.options]
    screen = record(command, MESSAGES, args.timeout)
    print("```text")
    print(f"$ attnmt chat --model {args.model} --seed {args.seed} {' '.join(args.options)}")
    print(screen.rstrip())
    print("```")


if __name__ == "__main__":
    main()
