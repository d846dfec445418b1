"""Read what an LLM answered: explanations, labels, 0/1 lists and simulated activations.

A parser never raises on a bad answer: it returns a `Parsed` whose status says what happened
("ok", "unmarked": usable but without the expected marker, "empty", "malformed") and an error
line, so a run records the answer as it was and decides whether to retry. Where the backend
gave log-probabilities, the 0/1 lists also get P(1) per entry and the simulator an expected
activation per token, both read at the answer token that holds the number.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from saescope.autointerp.backend import TokenLogprob
from saescope.autointerp.prompts import EXPLANATION_MARKER, LABEL_MARKER, OAI_MARKER

MAX_LABEL_WORDS = 6
MAX_EXPLANATION_CHARS = 500


@dataclass
class Parsed:
    status: str  # "ok", "unmarked", "empty" or "malformed"
    value: Any = None
    error: str = ""
    probabilities: list[float | None] | None = field(default=None)  # per entry, from logprobs

    @property
    def usable(self) -> bool:
        return self.status in ("ok", "unmarked")


def parse_explanation(text: str, fmt: str = "delphi") -> Parsed:
    """The explanation after the format's marker; without the marker, the last non-empty line
    (status "unmarked")."""
    marker = {"delphi": EXPLANATION_MARKER, "oai": OAI_MARKER, "label": LABEL_MARKER}[fmt]
    if not text.strip():
        return Parsed("empty", error="the answer is empty")
    at = text.rfind(marker)
    if at < 0:  # some models drop the brackets or change the case
        match = list(re.finditer(re.escape(marker.strip("[]:")) + r"\]?\s*:", text, re.I))
        at, marker = (match[-1].start(), match[-1].group(0)) if match else (-1, marker)
    if at >= 0:
        found = _first_line(text[at + len(marker) :])
        if not found:
            return Parsed("malformed", error=f"nothing after {marker!r}")
        return _checked(found, fmt, "ok")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return _checked(_clean(lines[-1]), fmt, "unmarked")


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return _clean(line)
    return ""


def _clean(line: str) -> str:
    line = line.strip().strip("*").strip()
    if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'`":
        line = line[1:-1].strip()
    return line


def _checked(found: str, fmt: str, status: str) -> Parsed:
    if not found:
        return Parsed("malformed", error="the explanation is empty")
    if fmt == "label":
        words = found.rstrip(".").split()
        if len(words) > MAX_LABEL_WORDS:
            return Parsed(
                "malformed",
                value=found,
                error=f"a label of {len(words)} words (at most {MAX_LABEL_WORDS})",
            )
        return Parsed(status, value=" ".join(words))
    if len(found) > MAX_EXPLANATION_CHARS:
        return Parsed(
            "malformed",
            value=found,
            error=f"an explanation of {len(found)} characters (at most {MAX_EXPLANATION_CHARS})",
        )
    return Parsed(status, value=found)


# --- 0/1 lists (detection, fuzzing) -------------------------------------------------------

_LIST = re.compile(r"\[([^\[\]]*)\]")
_ENTRY = {"1": 1, "0": 0, "true": 1, "false": 0, "yes": 1, "no": 0}


def parse_binary_list(text: str, n: int, logprobs: list[TokenLogprob] | None = None) -> Parsed:
    """A list of n 0/1 answers, the first bracketed list in the answer that reads as one."""
    if not text.strip():
        return Parsed("empty", error="the answer is empty")
    for match in _LIST.finditer(text):
        items = [s.strip().strip("'\"").lower() for s in match.group(1).split(",")]
        if not all(item in _ENTRY for item in items):
            continue
        if len(items) != n:
            return Parsed("malformed", error=f"a list of {len(items)} answers, not {n}")
        values = [_ENTRY[item] for item in items]
        probabilities = None
        if logprobs is not None:
            spans = [
                m.start() for m in re.finditer(r"[01]|true|false|yes|no", match.group(1), re.I)
            ]
            starts = [match.start(1) + s for s in spans]
            probabilities = [_p_one(logprobs, text, at) for at in starts]
        return Parsed("ok", value=values, probabilities=probabilities)
    return Parsed("malformed", error=f"no list of {n} 0/1 answers in the answer")


def _token_at(logprobs: list[TokenLogprob], text: str, offset: int) -> TokenLogprob | None:
    """The answer token covering character `offset` (None when the tokens do not spell the text)."""
    if "".join(t.token for t in logprobs) != text:
        return None
    at = 0
    for token in logprobs:
        if at <= offset < at + len(token.token):
            return token
        at += len(token.token)
    return None


def _p_one(logprobs: list[TokenLogprob], text: str, offset: int) -> float | None:
    token = _token_at(logprobs, text, offset)
    if token is None:
        return None
    alternatives = {token.token: token.logprob, **token.top}
    p = {0: 0.0, 1: 0.0}
    for alt, logprob in alternatives.items():
        key = _ENTRY.get(alt.strip().lower())
        if key is not None:
            p[key] += math.exp(logprob)
    total = p[0] + p[1]
    return p[1] / total if total > 0 else None


# --- simulation -------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_simulation(text: str, n: int, logprobs: list[TokenLogprob] | None = None) -> Parsed:
    """n predicted activations 0-10, from {"activations": [...]} or a bare list; with logprobs,
    each number is the expected value over the alternatives 0..10 at its token."""
    if not text.strip():
        return Parsed("empty", error="the answer is empty")
    found = _json_list(text)
    if found is None:
        return Parsed("malformed", error='no {"activations": [...]} list of numbers in the answer')
    values, start = found
    if len(values) != n:
        return Parsed("malformed", error=f"{len(values)} predicted activations, not {n}")
    clipped = [min(10.0, max(0.0, float(v))) for v in values]
    expected: list[float | None] | None = None
    if logprobs is not None:
        body = text[start:]
        offsets = [start + m.start() for m in _NUMBER.finditer(body)][:n]
        expected = [_expected_digit(logprobs, text, at) for at in offsets]
    return Parsed("ok", value=clipped, probabilities=expected)


def _json_list(text: str) -> tuple[list[float], int] | None:
    """The numbers of the first JSON list of numbers in text, and where that list starts."""
    for match in _LIST.finditer(text):
        try:
            values = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return [float(v) for v in values], match.start()
    return None


def _expected_digit(logprobs: list[TokenLogprob], text: str, offset: int) -> float | None:
    token = _token_at(logprobs, text, offset)
    if token is None:
        return None
    weights: dict[int, float] = {}
    for alt, logprob in {token.token: token.logprob, **token.top}.items():
        alt = alt.strip()
        if alt.isdigit() and int(alt) <= 10:
            weights[int(alt)] = weights.get(int(alt), 0.0) + math.exp(logprob)
    total = sum(weights.values())
    return sum(k * w for k, w in weights.items()) / total if total > 0 else None
