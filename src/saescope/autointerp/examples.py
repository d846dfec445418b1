"""Pick a feature's examples for explaining and for scoring, from what the feature store holds.

A feature page (`FeatureStore.feature` / `iter_features`) has top examples, examples sampled
from activation-quantile intervals, random contexts where the feature is inactive, and the
nearest features by decoder cosine. From these:
- explain: the strongest top examples (every other one, so that scoring still sees strong ones);
- activating (scoring): the remaining top examples and the quantile examples, spread over the
  intervals, none sharing a context with an explain example;
- non-activating (scoring): the feature's random inactive contexts, plus hard negatives: top
  examples of its nearest features by decoder cosine, whose text looks alike but where this
  feature did not fire (those at a context this feature has an example in are left out).
Every example keeps where it came from (`ref`), so a stored prediction can be traced back.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from saescope.autointerp.prompts import Window


@dataclass
class ExampleRef:
    """Where an example came from in the store."""

    feature: int  # the feature whose page holds it (a neighbour's, for hard negatives)
    kind: str  # "top", "quantile", "inactive" or "neighbour"
    rank: int
    interval: int = -1
    context_index: int = -1
    position: int = -1


@dataclass
class FeatureExample:
    tokens: list[str]
    acts: list[float] | None  # this feature's activations; None when unknown (hard negatives)
    activating: bool
    ref: ExampleRef

    def window(self) -> Window:
        return Window(self.tokens, self.acts or [0.0] * len(self.tokens))


@dataclass
class ExampleSets:
    feature: int
    max_act: float
    explain: list[FeatureExample]
    activating: list[FeatureExample]
    inactive: list[FeatureExample]  # random contexts where the feature is inactive
    hard_negatives: list[FeatureExample] = field(default_factory=list)
    top_logits: list[str] = field(default_factory=list)

    @property
    def non_activating(self) -> list[FeatureExample]:
        return self.inactive + self.hard_negatives


def _example(feature: int, kind: str, ex: dict[str, Any], activating: bool) -> FeatureExample:
    return FeatureExample(
        tokens=list(ex["tokens"]),
        acts=[float(a) for a in ex["acts"]] if activating or kind == "inactive" else None,
        activating=activating,
        ref=ExampleRef(
            feature=feature,
            kind=kind,
            rank=int(ex["rank"]),
            interval=int(ex.get("interval", -1)),
            context_index=int(ex.get("context_index", -1)),
            position=int(ex.get("position", -1)),
        ),
    )


def select_examples(
    page: dict[str, Any],
    neighbour_pages: Iterable[dict[str, Any]] = (),
    *,
    n_explain: int = 10,
    n_activating: int = 10,
    n_inactive: int = 10,
    n_hard_negatives: int = 5,
    n_top_logits: int = 10,
    seed: int = 0,
) -> ExampleSets:
    """Disjoint explain / scoring example sets of one feature page (see the module docstring)."""
    rng = random.Random(f"{seed}/{page['feature']}")
    feature = int(page["feature"])
    top = [_example(feature, "top", ex, True) for ex in page["examples"]["top"]]
    top = [ex for ex in top if max(ex.acts or [0.0]) > 0]
    explain = top[0::2][:n_explain] if len(top) > 1 else top
    explain_contexts = {ex.ref.context_index for ex in explain if ex.ref.context_index >= 0}
    candidates = [ex for ex in top if ex not in explain] + _spread_quantiles(feature, page, rng)
    activating = [
        ex
        for ex in candidates
        if ex.ref.context_index < 0 or ex.ref.context_index not in explain_contexts
    ]
    activating = _spread(activating, n_activating)
    inactive = [_example(feature, "inactive", ex, False) for ex in page["examples"]["inactive"]]
    rng.shuffle(inactive)
    own_contexts = {
        (ex.ref.context_index, ex.ref.position) for ex in [*explain, *activating, *inactive]
    }
    hard = _hard_negatives(neighbour_pages, feature, own_contexts, rng)
    return ExampleSets(
        feature=feature,
        max_act=float(page["max_act"]),
        explain=explain,
        activating=activating,
        inactive=inactive[:n_inactive],
        hard_negatives=hard[:n_hard_negatives],
        top_logits=[row["token"] for row in page.get("logits", {}).get("top", [])][:n_top_logits],
    )


def _spread_quantiles(
    feature: int, page: dict[str, Any], rng: random.Random
) -> list[FeatureExample]:
    """Quantile examples interleaved across intervals (strongest interval first)."""
    by_interval: dict[int, list[FeatureExample]] = {}
    for ex in page["examples"]["quantile"]:
        example = _example(feature, "quantile", ex, True)
        if max(example.acts or [0.0]) > 0:
            by_interval.setdefault(example.ref.interval, []).append(example)
    for group in by_interval.values():
        rng.shuffle(group)
    groups = [by_interval[k] for k in sorted(by_interval, reverse=True)]
    out: list[FeatureExample] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out += [g[i] for g in groups if i < len(g)]
    return out


def _spread(examples: list[FeatureExample], n: int) -> list[FeatureExample]:
    """n examples taken evenly from the list (which runs from strong to weak)."""
    if len(examples) <= n:
        return examples
    step = len(examples) / n
    return [examples[int(i * step)] for i in range(n)]


def _hard_negatives(
    neighbour_pages: Iterable[dict[str, Any]],
    feature: int,
    own_contexts: set[tuple[int, int]],
    rng: random.Random,
) -> list[FeatureExample]:
    out: list[FeatureExample] = []
    for page in neighbour_pages:
        if int(page["feature"]) == feature:
            continue
        for ex in page["examples"]["top"]:
            example = _example(int(page["feature"]), "neighbour", ex, False)
            if (example.ref.context_index, example.ref.position) not in own_contexts:
                out.append(example)
    rng.shuffle(out)
    return out
