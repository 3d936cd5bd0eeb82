"""Heartbeats: each stage of `plogd --multi` proves that it moves.

A stage that is alive but stuck (a read blocked on a network file system, a send that never
returns, a process stopped by SIGSTOP) is not noticed by waiting for processes to end. So
each stage writes the monotonic clock (one clock for every process on Linux) into its own
slot of shared memory whenever it makes a step: a batch handled, a second waited for work or
for room downstream. The supervisor reads the slots and calls a stage that has not beaten
for longer than its bound stalled.

`beat()` may be called from any code a stage runs (a long wait inside a stage, say); it does
nothing outside a stage process (`--single`, the tests of a stage).
"""
from __future__ import annotations

import time

_beat = None                    # the current stage process's: set by `attach`


class Heartbeats:
    """The time of each stage's last beat, in shared memory (no lock: one writer per slot)."""

    def __init__(self, names: list[str], context):
        self.names = list(names)
        self._slots = context.RawArray("d", len(self.names))
        for index in range(len(self.names)):
            self._slots[index] = time.monotonic()

    def attach(self, name: str) -> None:
        """In a stage process: from now on `beat()` stamps this stage's slot."""
        global _beat
        index = self.names.index(name)

        def stamp() -> None:
            self._slots[index] = time.monotonic()
        _beat = stamp
        stamp()

    def stalled(self, bounds: dict[str, float],
                now: float | None = None) -> list[tuple[str, float]]:
        """(stage, seconds since its last beat) of the stages silent for longer than their
        bound."""
        now = time.monotonic() if now is None else now
        silent = [(name, now - self._slots[i]) for i, name in enumerate(self.names)]
        return [(name, seconds) for name, seconds in silent if seconds > bounds[name]]


def beat() -> None:
    if _beat is not None:
        _beat()
