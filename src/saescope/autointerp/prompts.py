"""Prompt renderers for explaining and scoring features, each with a version that goes into results.

Explainer formats (`EXPLAIN_FORMATS`):
- "delphi": the examples as text with the activating tokens marked <<like this>> (a run of
  tokens above `threshold` x the example's max activation is one marked span), optionally each
  example followed by its marked tokens with their activation on a 0-10 scale; the answer's
  last line starts with the fixed marker "[EXPLANATION]:".
- "oai": the OpenAI / Neuronpedia token-activation pairs, one "token<TAB>activation" line per
  token, activations normalised to 0-10 of the feature's max; the answer after "Explanation:".
- "label": a 1-6 word label for maps and lists, from the marked examples; after "[LABEL]:".

Scorer prompts: detection (does each example show the feature? examples unmarked), fuzzing (are
the marked tokens in each example the ones the explanation is about?), both answered as a list
of 0/1, one per example in a batch of ~5, after two answered demonstrations (as delphi's
prompts have: a small model copies their format); and simulation (predict each token's
activation 0-10 from the explanation, answered as JSON).

Tokens are shown as text with newlines and tabs escaped, so every example stays on its line.
Change a renderer's wording only with a new version number: the version is part of a result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from saescope.autointerp.backend import Message

EXPLAIN_FORMATS = ("delphi", "oai", "label")
PROMPT_VERSIONS = {
    "delphi": 1,
    "oai": 1,
    "label": 1,
    "detection": 2,  # 2: answered demonstrations before the question
    "fuzzing": 2,
    "simulation": 1,
}
EXPLANATION_MARKER = "[EXPLANATION]:"
LABEL_MARKER = "[LABEL]:"
OAI_MARKER = "Explanation:"


@dataclass
class Window:
    """A token window as a prompt shows it: token texts and the feature's activation on each."""

    tokens: list[str]
    acts: list[float]


def show_token(token: str) -> str:
    return (
        token.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )


def scaled(act: float, max_act: float) -> int:
    """An activation on the 0-10 scale of `max_act` (the feature's max), halves rounded up."""
    if max_act <= 0 or act <= 0:
        return 0
    return min(10, math.floor(10 * act / max_act + 0.5))


def marked_text(window: Window, threshold: float) -> str:
    """The window's text with each run of tokens above threshold x its max marked <<...>>."""
    cutoff = threshold * max(window.acts, default=0.0)
    out: list[str] = []
    inside = False
    for token, act in zip(window.tokens, window.acts, strict=True):
        hot = act > cutoff and act > 0
        if hot and not inside:
            out.append("<<")
        elif not hot and inside:
            out.append(">>")
        inside = hot
        out.append(show_token(token))
    if inside:
        out.append(">>")
    return "".join(out)


def plain_text(window: Window) -> str:
    return "".join(show_token(t) for t in window.tokens)


def marked_activations(window: Window, threshold: float, max_act: float, limit: int = 10) -> str:
    """The marked tokens with their activation 0-10: '("France" : 10), ("Paris" : 7)'."""
    cutoff = threshold * max(window.acts, default=0.0)
    pairs = [
        f'("{show_token(t)}" : {scaled(a, max_act)})'
        for t, a in zip(window.tokens, window.acts, strict=True)
        if a > cutoff and a > 0
    ]
    return ", ".join(pairs[:limit])


# --- explainers --------------------------------------------------------------------------

DELPHI_SYSTEM = """You study the internal features of a language model. Each feature responds to some pattern in text. You will read text examples where the feature is active; the tokens where it is most active are marked between << and >> (a run of marked tokens is one span <<like this>>). After an example may come a list of the marked tokens with how strongly the feature responds to each, from 0 to 10.

Guidelines:
- Say concisely what the marked tokens and their contexts have in common.
- Describe the pattern, not a list of the marked tokens; skip examples that do not fit.
- Do not mention the << >> markers.
- Give one explanation, not a list of candidates.
- The last line of your answer must be the explanation, starting with [EXPLANATION]:"""

LABEL_SYSTEM = """You name the internal features of a language model. Each feature responds to some pattern in text. You will read text examples where the feature is active; the tokens where it is most active are marked between << and >>.

Give the feature a short label of 1 to 6 words that says what the marked tokens have in common, such as "French city names" or "closing parentheses in code". Answer with one line starting with [LABEL]: and nothing else."""

OAI_SYSTEM = """We are studying features of a language model. Each feature looks for some particular thing in a short piece of text. Look at the documents below: every line is a token, a tab, and how strongly the feature fires on that token, from 0 (not at all) to 10 (its strongest). Explain in one short sentence what the feature fires on. Answer with one line starting with "Explanation:"."""


def explain_prompt(
    fmt: str,
    windows: Sequence[Window],
    max_act: float,
    *,
    feature: int = 0,
    threshold: float = 0.3,
    show_activations: bool = False,
    top_logits: Sequence[str] = (),
) -> tuple[Message, ...]:
    """The explainer's messages for `windows` of a feature whose max activation is `max_act`."""
    if fmt == "delphi":
        return _delphi_prompt(windows, max_act, threshold, show_activations, top_logits)
    if fmt == "label":
        return _label_prompt(windows, threshold, top_logits)
    if fmt == "oai":
        return _oai_prompt(windows, max_act, feature)
    raise ValueError(f"prompt format {fmt!r}: expected one of {', '.join(EXPLAIN_FORMATS)}")


def _logits_line(top_logits: Sequence[str]) -> str:
    shown = ", ".join(f'"{show_token(t)}"' for t in top_logits)
    return f"\n\nTokens the feature makes more likely next: {shown}" if top_logits else ""


def _delphi_prompt(
    windows: Sequence[Window],
    max_act: float,
    threshold: float,
    show_activations: bool,
    top_logits: Sequence[str],
) -> tuple[Message, ...]:
    parts = []
    for i, w in enumerate(windows, 1):
        text = f"Example {i}: {marked_text(w, threshold)}"
        if show_activations:
            text += f"\nActivations: {marked_activations(w, threshold, max_act)}"
        parts.append(text)
    user = "\n\n".join(parts) + _logits_line(top_logits)
    return (Message("system", DELPHI_SYSTEM), Message("user", user))


def _label_prompt(
    windows: Sequence[Window], threshold: float, top_logits: Sequence[str]
) -> tuple[Message, ...]:
    parts = [f"Example {i}: {marked_text(w, threshold)}" for i, w in enumerate(windows, 1)]
    user = "\n".join(parts) + _logits_line(top_logits)
    return (Message("system", LABEL_SYSTEM), Message("user", user))


def _oai_prompt(windows: Sequence[Window], max_act: float, feature: int) -> tuple[Message, ...]:
    lines = [f"Feature {feature}", "Activations:"]
    for w in windows:
        lines.append("<start>")
        lines += [
            f"{show_token(t)}\t{scaled(a, max_act)}" for t, a in zip(w.tokens, w.acts, strict=True)
        ]
        lines.append("<end>")
    return (Message("system", OAI_SYSTEM), Message("user", "\n".join(lines)))


# --- scorers -----------------------------------------------------------------------------

DETECTION_SYSTEM = """You check explanations of a language model's features. You get an explanation of a feature, such as "male pronouns" or "text about cooking", and a few numbered text examples. Decide for each example whether the feature, as explained, is present in it.

Answer with a list of 0s and 1s, one per example in order: 1 if the example shows the feature, 0 if it does not. Answer with the list only, for example [1,0,0,1,0]."""

FUZZING_SYSTEM = """You check explanations of a language model's features. You get an explanation of a feature and a few numbered text examples in which some tokens are marked between << and >>. In some examples the marks are on the tokens the explanation describes; in others they were put on the wrong tokens.

Answer with a list of 0s and 1s, one per example in order: 1 if the marked tokens are the ones the explanation describes, 0 if they are marked wrongly. Answer with the list only, for example [1,0,0,1,0]."""

SIMULATION_SYSTEM = """You predict how a language model's feature responds to text. You get an explanation of the feature and a numbered list of tokens. For every token, predict how strongly the feature fires on it, as a whole number from 0 (not at all) to 10 (as strongly as it ever does). Most tokens are usually 0.

Answer with JSON only: {"activations": [...]}, one number per token, in the order of the list."""


# Answered demonstrations shown before the question, as delphi's scorer prompts have: without
# them a small model (the bundled 135M one) answers in prose and no answer parses; with them it
# answers with a list. (explanation, examples as shown, the answer); fuzzing marks with << >>.
DETECTION_DEMOS = (
    (
        "names of rivers",
        [
            "the barges sailed down the Danube towards the Black Sea",
            "she bought two loaves of bread and a jar of honey",
            "we swam in the Thames near Oxford last July",
            "the meeting was moved to Thursday afternoon",
            "press the red button to stop the machine",
        ],
        "[1,0,1,0,0]",
    ),
    (
        "a closing parenthesis that ends a function call in code",
        [
            "the garden was full of roses in early June",
            "He said he would call back tomorrow morning",
            "prices rose by three percent over the year",
            "our team won the final match on penalties",
            "a quiet village at the foot of the mountains",
        ],
        "[0,0,0,0,0]",
    ),
)
FUZZING_DEMOS = (
    (
        "names of rivers",
        [
            "the barges sailed down the<< Danube>> towards the Black Sea",
            "she<< bought>> two loaves of bread and a jar of honey",
            "we swam in the<< Thames>> near Oxford last July",
            "the meeting was moved to<< Thursday>> afternoon",
            "a bridge over the<< Rhine>> at Cologne",
        ],
        "[1,0,1,0,1]",
    ),
    (
        'the word "not" and other negations',
        [
            "I do not<< think>> that is right",
            "she could<< never>> agree to it",
            "the plan was<< not>> approved by the board",
            "there<< is>> no reason to worry",
            "it was<< n't>> what we expected",
        ],
        "[0,1,1,0,1]",
    ),
)


def _batch_question(explanation: str, shown: Sequence[str]) -> str:
    examples = "\n".join(f"Example {i}: {text}" for i, text in enumerate(shown, 1))
    return f"Feature explanation: {explanation}\n\nText examples:\n\n{examples}"


def _with_demos(
    system: str, demos: Sequence[tuple[str, list[str], str]], question: str
) -> tuple[Message, ...]:
    shown: list[Message] = [Message("system", system)]
    for explanation, examples, answer in demos:
        shown += [
            Message("user", _batch_question(explanation, examples)),
            Message("assistant", answer),
        ]
    return (*shown, Message("user", question))


def detection_prompt(explanation: str, windows: Sequence[Window]) -> tuple[Message, ...]:
    """System, the answered demonstrations, then the question about `windows`."""
    question = _batch_question(explanation, [plain_text(w) for w in windows])
    return _with_demos(DETECTION_SYSTEM, DETECTION_DEMOS, question)


def fuzzing_prompt(
    explanation: str, windows: Sequence[Window], threshold: float = 0.3
) -> tuple[Message, ...]:
    """`windows` carry the marks to show: a mislabeled one has acts on the wrong tokens."""
    question = _batch_question(explanation, [marked_text(w, threshold) for w in windows])
    return _with_demos(FUZZING_SYSTEM, FUZZING_DEMOS, question)


def simulation_prompt(explanation: str, tokens: Sequence[str]) -> tuple[Message, ...]:
    listed = "\n".join(f"{i}\t{show_token(t)}" for i, t in enumerate(tokens))
    user = (
        f"Feature explanation: {explanation}\n\nTokens ({len(tokens)}):\n{listed}\n\n"
        f"Answer with {len(tokens)} numbers."
    )
    return (Message("system", SIMULATION_SYSTEM), Message("user", user))
