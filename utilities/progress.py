"""Progress of a long management command: a live bar on a terminal, plain lines otherwise.

A bar redrawn with carriage returns is what a person at a terminal wants; in a log file, a CI
job or a Kubernetes Job's output it would be one long garbled line, so there every update is a
line of its own (`examined 500/12000 releases`).
"""

import logging
import os
from contextlib import ExitStack
from typing import TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


class Progress:
    """`progress(done, total)` after each step; use as a context manager so the bar is closed.

    `stream` is where it goes (a command's `self.stderr`); `enabled=False` reports nothing.
    """

    def __init__(self, stream, *, verb: str, noun: str, enabled: bool = True):
        self.stream = _unwrapped(stream)
        self.verb, self.noun, self.enabled = verb, noun, enabled
        self.terminal = enabled and _isatty(self.stream)
        self._bar: tqdm | None = None
        self._exit = ExitStack()

    def __enter__(self) -> "Progress":
        if self.terminal:
            # Log lines (the root logger's stderr handler) print above the bar, not through it.
            self._exit.enter_context(logging_redirect_tqdm(loggers=[logging.getLogger()]))
        return self

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if not self.terminal:
            self.stream.write(f"{self.verb} {done}/{total} {self.noun}\n")
            self.stream.flush()
            return
        if self._bar is None:
            # Follow the terminal's width, unless it reports no size (a pty nobody sized).
            size = {"dynamic_ncols": True} if _columns(self.stream) else {"ncols": 80, "nrows": 24}
            self._bar = tqdm(
                total=total,
                desc=f"{self.verb} {self.noun}",
                unit=f" {self.noun}",
                file=self.stream,
                **size,
            )
        self._bar.total = max(total, done)  # rows may be added while we work
        self._bar.update(done - self._bar.n)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
        self._exit.close()


def _unwrapped(stream) -> TextIO:
    # A command's self.stderr is Django's OutputWrapper, which appends a newline to every
    # write and colours it red on a terminal; the bar needs the raw stream underneath.
    return getattr(stream, "_out", stream)


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def _isatty(stream) -> bool:
    return bool(getattr(stream, "isatty", None) and stream.isatty())
