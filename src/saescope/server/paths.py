"""Paths of the server's machine kept out of what it answers: an error text names a file by
its last part only, never where it lives."""

from __future__ import annotations

import re

_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(?:~|[A-Za-z]:)?(?:[/\\][^\s/\\'\"]+){2,}[/\\]?")


def without_paths(text: str) -> str:
    """An error text with every absolute path cut to its last part ("/home/u/run/features.db"
    -> ".../features.db"): what the server's files are called is nobody's business."""
    return _ABSOLUTE_PATH.sub(lambda m: ".../" + re.split(r"[/\\]", m[0].rstrip("/\\"))[-1], text)
