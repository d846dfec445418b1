"""Progress bars for long jobs: a live bar on a terminal, a plain line every few seconds in a log.

A tqdm bar redraws itself with carriage returns many times a second; written to a file or a CI
log, every redraw becomes a line (thousands per run). So when the stream is not a terminal, the
bar prints its status as one ordinary line at most every LOG_INTERVAL_S seconds, and once at the
end. Every long job makes its bar through `progress_bar`.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from tqdm.auto import tqdm

LOG_INTERVAL_S = 10.0
# In a log, the bar's glyphs say nothing the percentage does not.
LOG_FORMAT = (
    "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)


class LogLineBar(tqdm):
    """A tqdm whose display is a plain status line, printed at most every LOG_INTERVAL_S."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._last_line = 0.0
        self._last_n: float | None = None
        if kwargs.get("total") is not None:
            kwargs.setdefault("bar_format", LOG_FORMAT)
        super().__init__(*args, **kwargs)

    # tqdm's stub says display returns None; tqdm's code uses the bool (tqdm.std's moveto/clear)
    def display(  # pyright: ignore[reportIncompatibleMethodOverride]
        self, msg: str | None = None, pos: int | None = None
    ) -> bool:
        now = time.monotonic()
        final = self.total is not None and self.n >= self.total
        if msg is None and not final and now - self._last_line < LOG_INTERVAL_S:
            return True
        self._last_line, self._last_n = now, self.n
        line = msg if msg is not None else self.format_meter(**self.format_dict)
        self.fp.write(line.strip() + "\n")
        self.fp.flush()
        return True

    def close(self) -> None:
        if not self.disable and self._last_n != self.n:  # the final state, unless just printed
            self._last_line = 0.0
            self.display()
        self.disable = True  # tqdm's own close would redraw with a carriage return
        super().close()


def is_terminal(stream: IO[str] | None = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def progress_bar(*, disable: bool = False, file: IO[str] | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar on a terminal, else a LogLineBar; kwargs are tqdm's (total, unit, desc, ...)."""
    stream = file if file is not None else sys.stderr
    if is_terminal(stream):
        return tqdm(disable=disable, file=stream, **kwargs)
    return LogLineBar(disable=disable, file=stream, mininterval=0, **kwargs)


def quiet_library_bars() -> None:
    """Turn off the progress bars of transformers / huggingface_hub when not on a terminal."""
    if is_terminal():
        return
    from huggingface_hub.utils import disable_progress_bars  # slow import
    from transformers.utils import logging as hf_logging

    disable_progress_bars()
    hf_logging.disable_progress_bar()
