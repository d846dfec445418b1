"""The prompt renderers against prompts written out by hand."""

from __future__ import annotations

from saescope.autointerp.parsers import parse_binary_list
from saescope.autointerp.prompts import (
    DELPHI_SYSTEM,
    DETECTION_DEMOS,
    DETECTION_SYSTEM,
    FUZZING_DEMOS,
    FUZZING_SYSTEM,
    LABEL_SYSTEM,
    OAI_SYSTEM,
    SIMULATION_SYSTEM,
    Window,
    detection_prompt,
    explain_prompt,
    fuzzing_prompt,
    simulation_prompt,
)

PARIS = Window(
    [" The", " capital", " is", " Paris", ",", " France", "\n"], [0, 0, 0.5, 8.0, 0, 3.0, 0]
)
CODE = Window(["def", " f", "(x", "):", "\t", "return"], [0, 2.0, 2.5, 0, 0, 0.1])


def test_delphi_format_marks_runs_above_threshold_and_lists_activations() -> None:
    system, user = explain_prompt("delphi", [PARIS, CODE], max_act=8.0, show_activations=True)
    assert (system.role, system.content) == ("system", DELPHI_SYSTEM)
    assert user.role == "user"
    # PARIS: max 8, threshold 2.4: " Paris" (8) and " France" (3) marked, " is" (0.5) not;
    # CODE: max 2.5, threshold 0.75: " f(x" is one run
    assert user.content == (
        "Example 1:  The capital is<< Paris>>,<< France>>\\n\n"
        'Activations: (" Paris" : 10), (" France" : 4)\n\n'
        "Example 2: def<< f(x>>):\\treturn\n"
        'Activations: (" f" : 3), ("(x" : 3)'
    )
    assert DELPHI_SYSTEM.rstrip().endswith("starting with [EXPLANATION]:")


def test_delphi_format_without_activations_with_top_logits() -> None:
    _, user = explain_prompt(
        "delphi", [PARIS], max_act=8.0, threshold=0.05, top_logits=[" Lyon", "\n"]
    )
    assert user.content == (
        "Example 1:  The capital<< is Paris>>,<< France>>\\n\n\n"
        'Tokens the feature makes more likely next: " Lyon", "\\n"'
    )


def test_oai_format_is_token_tab_activation_normalised_to_the_feature_max() -> None:
    system, user = explain_prompt("oai", [PARIS, CODE], max_act=10.0, feature=42)
    assert system.content == OAI_SYSTEM
    assert user.content == (
        "Feature 42\nActivations:\n<start>\n"
        " The\t0\n capital\t0\n is\t1\n Paris\t8\n,\t0\n France\t3\n\\n\t0\n<end>\n<start>\n"
        "def\t0\n f\t2\n(x\t3\n):\t0\n\\t\t0\nreturn\t0\n<end>"
    )


def test_label_format() -> None:
    system, user = explain_prompt("label", [PARIS, CODE], max_act=8.0)
    assert system.content == LABEL_SYSTEM
    assert user.content == (
        "Example 1:  The capital is<< Paris>>,<< France>>\\n\nExample 2: def<< f(x>>):\\treturn"
    )


def test_detection_and_fuzzing_prompts() -> None:
    system, *demos, user = detection_prompt("French places", [PARIS, CODE])
    assert system.content == DETECTION_SYSTEM
    assert len(demos) == 2 * len(DETECTION_DEMOS)
    assert user.content == (
        "Feature explanation: French places\n\nText examples:\n\n"
        "Example 1:  The capital is Paris, France\\n\nExample 2: def f(x):\\treturn"
    )
    system, *demos, user = fuzzing_prompt("French places", [PARIS, CODE])
    assert system.content == FUZZING_SYSTEM
    assert len(demos) == 2 * len(FUZZING_DEMOS)
    assert user.content == (
        "Feature explanation: French places\n\nText examples:\n\n"
        "Example 1:  The capital is<< Paris>>,<< France>>\\n\n"
        "Example 2: def<< f(x>>):\\treturn"
    )


def test_scorer_demonstrations_are_answered_in_the_asked_format() -> None:
    """Each demonstration is a question as the scorer asks it, answered with a list that the
    scorer's own parser reads, one entry per example."""
    for render, demos in ((detection_prompt, DETECTION_DEMOS), (fuzzing_prompt, FUZZING_DEMOS)):
        _, *shown, _ = render("French places", [PARIS])
        for (explanation, examples, answer), (question, reply) in zip(
            demos, zip(shown[0::2], shown[1::2], strict=True), strict=True
        ):
            assert (question.role, reply.role) == ("user", "assistant")
            assert question.content.startswith(f"Feature explanation: {explanation}\n\n")
            assert question.content.endswith(f"Example {len(examples)}: {examples[-1]}")
            parsed = parse_binary_list(reply.content, len(examples))
            assert parsed.status == "ok" and reply.content == answer


def test_simulation_prompt_numbers_every_token() -> None:
    system, user = simulation_prompt("French places", [" Paris", ",", "\n"])
    assert system.content == SIMULATION_SYSTEM
    assert user.content == (
        "Feature explanation: French places\n\nTokens (3):\n0\t Paris\n1\t,\n2\t\\n\n\n"
        "Answer with 3 numbers."
    )
