"""Progress of long work: each message with the elapsed time, to the terminal and the run log."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("stackspray")


@dataclass
class Progress:
    """Receives progress events; the CLI prints them (stderr with --json), tests capture them.
    Every message also goes to the run log, so a log holds what the terminal showed."""

    emit: Callable[[str], None] = print
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, message: str) -> None:
        with self.lock:
            self.emit(f"[{time.monotonic() - self.started:7.1f}s] {message}")
        log.info(message)


def quiet() -> Progress:
    """A Progress that prints nothing (it still logs)."""
    return Progress(emit=lambda _m: None)
