"""Explain one feature: render its explain examples in a prompt format, ask, parse, retry."""

from __future__ import annotations

from saescope.autointerp.asking import ask
from saescope.autointerp.cache import LLMClient
from saescope.autointerp.examples import ExampleSets
from saescope.autointerp.parsers import parse_explanation
from saescope.autointerp.prompts import EXPLAIN_FORMATS, PROMPT_VERSIONS, explain_prompt
from saescope.autointerp.results import Explainer, Explanation
from saescope.errors import ConfigError


async def explain_feature(
    client: LLMClient,
    sets: ExampleSets,
    sae_id: str,
    *,
    prompt_format: str = "delphi",
    threshold: float = 0.3,
    show_activations: bool = False,
    use_top_logits: bool = False,
    max_tokens: int = 200,
    n_retries: int = 2,
) -> Explanation:
    if prompt_format not in EXPLAIN_FORMATS:
        raise ConfigError("prompt_format", prompt_format, f"one of {', '.join(EXPLAIN_FORMATS)}")
    messages = explain_prompt(
        prompt_format,
        [ex.window() for ex in sets.explain],
        sets.max_act,
        feature=sets.feature,
        threshold=threshold,
        show_activations=show_activations,
        top_logits=sets.top_logits if use_top_logits else (),
    )
    asked = await ask(
        client,
        messages,
        lambda c: parse_explanation(c.text, prompt_format),
        max_tokens=max_tokens,
        n_retries=n_retries,
    )
    return Explanation(
        sae_id=sae_id,
        feature=sets.feature,
        text=asked.parsed.value if asked.parsed.usable else None,
        status=asked.parsed.status,
        explainer=Explainer(
            backend=client.backend.name,
            model=client.backend.model,
            prompt_format=prompt_format,
            prompt_version=PROMPT_VERSIONS[prompt_format],
        ),
        prompt_tokens=asked.prompt_tokens,
        completion_tokens=asked.completion_tokens,
        attempts=asked.attempts,
        examples=[ex.ref for ex in sets.explain],
    )
