"""Parsers against answers SmolLM2-135M-Instruct really gave (recorded from `transformers serve`
and the in-process backend while developing), and against malformed ones."""

from __future__ import annotations

import math

from saescope.autointerp.backend import TokenLogprob
from saescope.autointerp.parsers import parse_binary_list, parse_explanation, parse_simulation

# real answers of SmolLM2-135M-Instruct to our prompts
REAL_EXPLAIN = (
    "The example you provided is a classic example of a semantic web challenge. The challenge is "
    "to create a semantic web model that can recognize and classify the pattern of the marked "
    "tokens and their contexts."
)
REAL_DETECTION = "The answer is either [1,0,0,1,0] or [0,0,1,"
REAL_DETECTION_PROSE = (
    "The answer is: 1.\n\nThe reason is that the example is not a game, but rather a"
)
REAL_SIMULATION = (
    "The following is a JSON response that describes the feature of a game.\n\n```json\n"
)


def test_explanation_after_the_marker() -> None:
    parsed = parse_explanation("Thinking...\n[EXPLANATION]: French city names\nmore", "delphi")
    assert (parsed.status, parsed.value) == ("ok", "French city names")
    lower = parse_explanation("explanation: 'the token Paris'", "delphi")
    assert (lower.status, lower.value) == ("ok", "the token Paris")
    oai = parse_explanation("Explanation: closing brackets in code", "oai")
    assert (oai.status, oai.value) == ("ok", "closing brackets in code")


def test_real_unmarked_explanation_is_usable_but_flagged() -> None:
    parsed = parse_explanation(REAL_EXPLAIN, "delphi")
    assert parsed.status == "unmarked" and parsed.usable
    assert parsed.value == REAL_EXPLAIN


def test_bad_explanations() -> None:
    assert parse_explanation("", "delphi").status == "empty"
    assert parse_explanation("  \n ", "delphi").status == "empty"
    nothing = parse_explanation("[EXPLANATION]:   \n", "delphi")
    assert nothing.status == "malformed" and "nothing after" in nothing.error
    assert parse_explanation("[EXPLANATION]: " + "x" * 600, "delphi").status == "malformed"


def test_labels_are_one_to_six_words() -> None:
    assert parse_explanation("[LABEL]: French city names.", "label").value == "French city names"
    too_long = parse_explanation("[LABEL]: a b c d e f g h", "label")
    assert too_long.status == "malformed" and "8 words" in too_long.error


def test_binary_lists() -> None:
    assert parse_binary_list("[1,0,0,1,0]", 5).value == [1, 0, 0, 1, 0]
    assert parse_binary_list("Sure: [True, false, 1]", 3).value == [1, 0, 1]
    real = parse_binary_list(REAL_DETECTION, 5)  # the first complete list wins
    assert (real.status, real.value) == ("ok", [1, 0, 0, 1, 0])
    assert parse_binary_list(REAL_DETECTION_PROSE, 5).status == "malformed"
    short = parse_binary_list("[1,0]", 5)
    assert short.status == "malformed" and "2 answers, not 5" in short.error
    assert parse_binary_list("", 5).status == "empty"
    assert parse_binary_list("[a, b]", 2).status == "malformed"


def test_binary_list_probabilities_from_logprobs() -> None:
    text = "[1,0]"
    tokens = [
        TokenLogprob("[", 0.0),
        TokenLogprob("1", math.log(0.6), {"1": math.log(0.6), "0": math.log(0.2), "x": -1}),
        TokenLogprob(",", 0.0),
        TokenLogprob("0", math.log(0.9), {"0": math.log(0.9), "1": math.log(0.1)}),
        TokenLogprob("]", 0.0),
    ]
    parsed = parse_binary_list(text, 2, tokens)
    assert parsed.value == [1, 0]
    assert parsed.probabilities is not None
    assert math.isclose(parsed.probabilities[0], 0.6 / 0.8)
    assert math.isclose(parsed.probabilities[1], 0.1 / 1.0)
    # tokens that do not spell the answer give no probabilities rather than wrong ones
    assert parse_binary_list(text, 2, tokens[:3]).probabilities == [None, None]


def test_simulation_answers() -> None:
    ok = parse_simulation('{"activations": [0, 3, 12, -1]}', 4)
    assert (ok.status, ok.value) == ("ok", [0.0, 3.0, 10.0, 0.0])  # clipped to 0..10
    assert parse_simulation("[0, 1]", 2).value == [0.0, 1.0]
    assert parse_simulation(REAL_SIMULATION, 4).status == "malformed"
    wrong = parse_simulation('{"activations": [0, 1]}', 3)
    assert wrong.status == "malformed" and "2 predicted activations, not 3" in wrong.error
    assert parse_simulation("", 3).status == "empty"


def test_simulation_expected_values_from_logprobs() -> None:
    text = "[7, 0]"
    tokens = [
        TokenLogprob("[", 0.0),
        TokenLogprob(
            "7", math.log(0.5), {"7": math.log(0.5), "10": math.log(0.25), "0": math.log(0.25)}
        ),
        TokenLogprob(",", 0.0),
        TokenLogprob(" 0", 0.0, {" 0": 0.0}),
        TokenLogprob("]", 0.0),
    ]
    parsed = parse_simulation(text, 2, tokens)
    assert parsed.value == [7.0, 0.0]
    assert parsed.probabilities is not None
    assert math.isclose(parsed.probabilities[0], 0.5 * 7 + 0.25 * 10)
    assert parsed.probabilities[1] == 0.0
