"""Live inference for the viewer: the model and the SAEs, loaded once, and the loop that answers
requests one batch at a time (saescope.server.worker runs it in a process of its own, or on a
thread when the caller hands over a model already loaded).

Requests never run at the same time: forward hooks and the SAE's input statistics are shared
state, so two requests at once could read each other's activations. Instead, the requests
for per-token activations that queued up while the model was busy run as one padded forward
(right-padding: the model is causal, so a text's own positions see nothing of the padding).

Each request carries a time limit, counted from when the worker received it: a request still
queued at its deadline is answered TimeLimitExceeded without running, and a running one stops
at the next check of the deadline (saescope.inference.limits: between generation steps, chunks
of features, blocks of tokens and the forwards of a batch).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch

from saescope.dashboards.dashboard import prompt_dashboard_data
from saescope.errors import ConfigError, SaescopeError
from saescope.inference import PromptRun
from saescope.inference.limits import TimeLimitExceeded, check_time, time_limit
from saescope.inference.prompt import encode_rows
from saescope.inference.steering import steer
from saescope.models import HookedModel
from saescope.sae import SAE, InputStats, load_sae
from saescope.sae.with_model import load_sae_with_model
from saescope.server.cache import to_json
from saescope.server.sources import ViewerSource

MAX_TEXT_CHARS = 4000  # longer texts are refused before tokenizing
MAX_TEXT_TOKENS = 256  # tokens of a live text (its BOS included)
MAX_BATCH = 16  # activation requests run in one forward at most
# Dense acts [tokens, d_sae] of one forward at most (float32: 256 MiB); a batch is split to
# stay under it, so a 262k-feature SAE runs one text at a time instead of exhausting memory.
MAX_DENSE_ELEMENTS = 64 * 2**20


class TextTooLong(SaescopeError):
    """A live text over the limit (HTTP 413)."""


class LiveUnavailable(SaescopeError):
    """Live inference is off for this SAE: no weights found, or they did not load (HTTP 409)."""


class FeatureNotFound(SaescopeError):
    """A feature id outside the SAE (HTTP 404)."""


class Busy(SaescopeError):
    """Too many live requests waiting, from this client or in all (HTTP 429, Retry-After)."""

    retry_after_s = 2


# errors that cross from the worker to the server by name (anything else is a 500)
ERRORS: dict[str, type[SaescopeError]] = {
    e.__name__: e
    for e in (
        TextTooLong,
        LiveUnavailable,
        FeatureNotFound,
        TimeLimitExceeded,
        ConfigError,
        SaescopeError,
    )
}


class LiveModels:
    """The model(s) and SAEs of a viewer source, and what the live endpoints compute."""

    def __init__(
        self,
        source: ViewerSource,
        model: HookedModel | None = None,
        saes: dict[str, SAE] | None = None,
        max_tokens: int = MAX_TEXT_TOKENS,
    ) -> None:
        self.store = source.store
        self.max_tokens = max_tokens
        self.saes: dict[str, SAE] = dict(saes or {})
        self.models: dict[str, HookedModel] = {}
        self.unavailable: dict[str, str] = {}  # sae_id -> why it has no live inference
        self._sae_model: dict[str, HookedModel] = {}
        self._given_model = model
        self._load(source)

    # --- loading -------------------------------------------------------------------------

    def _load(self, source: ViewerSource) -> None:
        for brief in source.store.list_saes():
            sae_id = brief["sae_id"]
            try:
                self._load_one(source, sae_id, brief.get("model"))
            except SaescopeError as err:
                self.saes.pop(sae_id, None)
                self.unavailable[sae_id] = str(err)

    def _load_one(self, source: ViewerSource, sae_id: str, stored_name: str | None) -> None:
        """The SAE and its model, through load_sae_with_model (which decides the hook point and
        checks the fit); SAEs on the same model share one loaded copy."""
        sae = self.saes.get(sae_id)
        if sae is None:
            folder = source.sae_dirs.get(sae_id)
            if folder is None:
                raise LiveUnavailable(
                    f"no SAE weights found for {sae_id!r} (looked in its analysis's "
                    "source folder and the run directory)"
                )
            sae = self.saes[sae_id] = load_sae(folder)
        name = sae.cfg.model_name or stored_name
        if self._given_model is None and not name:
            raise LiveUnavailable(f"the SAE {sae_id!r} names no model (cfg.model_name)")
        if not sae.cfg.hook_name:
            raise LiveUnavailable(f"the SAE {sae_id!r} names no hook point (cfg.hook_name)")
        model = self._given_model or (self.models.get(name) if name else None) or name
        on = load_sae_with_model(sae, model)
        self.saes[sae_id] = on.sae
        self.models.setdefault(name or on.model.name, on.model)
        self._sae_model[sae_id] = on.model

    def parts(self, sae_id: str) -> tuple[HookedModel, SAE]:
        if sae_id not in self.saes:
            reason = self.unavailable.get(sae_id, f"the SAE {sae_id!r} is not in the store")
            raise LiveUnavailable(f"live inference is off for this SAE: {reason}.")
        return self._sae_model[sae_id], self.saes[sae_id]

    # --- what the endpoints ask for ------------------------------------------------------

    def tokens(self, model: HookedModel, text: str) -> torch.Tensor:
        """[1, n] token ids of a live text, BOS first; refuses texts over the limits."""
        if len(text) > MAX_TEXT_CHARS:
            raise TextTooLong(
                f"text: got {len(text)} characters; the limit is {MAX_TEXT_CHARS} characters "
                f"({self.max_tokens} tokens)."
            )
        tokens = model.to_tokens(text)
        if tokens.shape[1] > self.max_tokens:
            raise TextTooLong(
                f"text: got {tokens.shape[1]} tokens; the limit is {self.max_tokens} tokens."
            )
        return tokens

    def iter_prompt_runs(
        self, sae_id: str, texts: list[str]
    ) -> Iterator[tuple[int, PromptRun | SaescopeError]]:
        """Each text through the model up to the SAE's hook point only (the live pages need no
        logits), in right-padded forwards of MAX_DENSE_ELEMENTS at most: per text (its index,
        a PromptRun (tokens, BOS first, and acts [n, d_sae]) or the error that refused it),
        one forward's texts at a time, so a caller that answers each as it comes holds one
        forward's dense acts, never a whole batch's."""
        model, sae = self.parts(sae_id)
        hook = sae.hook_name
        rows: list[tuple[int, list[int]]] = []
        for i, text in enumerate(texts):
            try:
                rows.append((i, self.tokens(model, text)[0].tolist()))
            except SaescopeError as err:
                yield i, err
        for group in _groups_within(rows, MAX_DENSE_ELEMENTS // sae.d_sae):
            check_time()
            width = max(len(ids) for _, ids in group)
            batch = torch.tensor(
                [ids + ids[-1:] * (width - len(ids)) for _, ids in group]
            )  # [b, width]
            with torch.inference_mode():
                resid = model.run_with_cache(batch, [hook])[hook]  # [b, width, d_in]
                runs = [
                    (i, PromptRun(model, sae, hook, ids, texts[i], *_encoded(sae, resid[j], ids)))
                    for j, (i, ids) in enumerate(group)
                ]
            del resid
            yield from runs
            del runs

    def prompt_runs(self, sae_id: str, texts: list[str]) -> list[PromptRun | SaescopeError]:
        """iter_prompt_runs's answers in the order of `texts`, all held at once."""
        out: dict[int, PromptRun | SaescopeError] = dict(self.iter_prompt_runs(sae_id, texts))
        return [out[i] for i in range(len(texts))]

    def prompt_run(self, sae_id: str, text: str) -> PromptRun:
        run = self.prompt_runs(sae_id, [text])[0]
        if isinstance(run, SaescopeError):
            raise run
        return run

    def top_features(
        self, sae_id: str, text: str, k: int, run: PromptRun | None = None
    ) -> dict[str, Any]:
        """Per token, its k most active features; over the text, the features by peak activation."""
        run = run or self.prompt_run(sae_id, text)
        ids, values = run.top_features(k)  # [n, k]
        per_token = [
            [{"feature": f, "act": v} for f, v in zip(fs, vs, strict=True) if f >= 0]
            for fs, vs in zip(ids.tolist(), values.tolist(), strict=True)
        ]
        peak = run.acts.max(dim=0).values
        order = peak.argsort(descending=True)[: 4 * k]
        overall = [
            {"feature": f, "max_act": v}
            for f, v in zip(order.tolist(), peak[order].tolist(), strict=True)
            if v > 0
        ]
        return {
            "sae_id": sae_id,
            "token_ids": run.token_ids,
            "tokens": run.tokens,
            "top_features": per_token,
            "features_by_max_act": overall,
        }

    def one_feature(
        self, sae_id: str, feature: int, text: str, run: PromptRun | None = None
    ) -> dict[str, Any]:
        """One feature's activation on every token of the text."""
        check_feature(self.parts(sae_id)[1], feature)
        run = run or self.prompt_run(sae_id, text)
        column = run.acts[:, feature]
        return {
            "sae_id": sae_id,
            "feature": feature,
            "token_ids": run.token_ids,
            "tokens": run.tokens,
            "acts": column.tolist(),
            "max_act": float(column.max()),
        }

    def prompt_page(
        self, sae_id: str, text: str, position: int | None, n_rows: int
    ) -> dict[str, Any]:
        """The prompt-centric page's data (the dashboards' DashboardData with its prompt part):
        every token's features ranked by activation, quantile and effect on the next token."""
        model, sae = self.parts(sae_id)
        self.tokens(model, text)
        return prompt_dashboard_data(
            self.store, sae_id, text, model=model, sae=sae, position=position, n_rows=n_rows
        )

    def steer(
        self, sae_id: str, prompt: str, feature: int, mode: str, value: float, max_new_tokens: int
    ) -> dict[str, Any]:
        model, sae = self.parts(sae_id)
        self.tokens(model, prompt)  # the same length limits as every live text
        return {
            "sae_id": sae_id,
            **steer(model, sae, prompt, feature, mode, value, max_new_tokens).to_dict(),
        }


def _encoded(
    sae: SAE, resid: torch.Tensor, ids: list[int]
) -> tuple[torch.Tensor, None, InputStats | None]:
    """A padded row's own positions encoded: (acts [n, d_sae], no final residual, stats)."""
    acts, stats = encode_rows(sae, resid[: len(ids)])
    return acts, None, stats


def _groups_within(
    rows: list[tuple[int, list[int]]], max_tokens: int
) -> list[list[tuple[int, list[int]]]]:
    """Rows in groups whose padded size (rows x longest) stays within max_tokens (a row
    alone may exceed it: one text is never split)."""
    groups: list[list[tuple[int, list[int]]]] = []
    for row in rows:
        group = groups[-1] if groups else None
        if group is not None and (len(group) + 1) * max(
            len(row[1]), *(len(ids) for _, ids in group)
        ) <= max(1, max_tokens):
            group.append(row)
        else:
            groups.append([row])
    return groups


def check_feature(sae: SAE, feature: int) -> None:
    if not 0 <= feature < sae.d_sae:
        raise FeatureNotFound(f"feature: got {feature}; this SAE has features 0..{sae.d_sae - 1}.")


# --- the request loop ---------------------------------------------------------------------


@dataclass(frozen=True)
class TopFeatures:
    """Per token of `text`, its `k` most active features (batched: shares a forward)."""

    sae_id: str
    text: str
    k: int


@dataclass(frozen=True)
class OneFeature:
    """One feature's activation on every token of `text` (batched: shares a forward)."""

    sae_id: str
    feature: int
    text: str


@dataclass(frozen=True)
class PromptPage:
    """The prompt-centric page of `text`."""

    sae_id: str
    text: str
    position: int | None
    n_rows: int


@dataclass(frozen=True)
class Steer:
    """Greedy continuations of `prompt` with `feature` clamped or scaled, and without."""

    sae_id: str
    prompt: str
    feature: int
    mode: str
    value: float
    max_new_tokens: int


@dataclass(frozen=True)
class Cancel:
    """Drop request `req_id` if it has not run yet (its client left, or it waited too long)."""

    req_id: int


@dataclass(frozen=True)
class Deadline:
    """When a request must be answered by: `at` in time.monotonic() seconds of the process
    that runs it, `limit_s` the limit it was given (what the error message quotes)."""

    at: float
    limit_s: float


Command = TopFeatures | OneFeature | PromptPage | Steer
# A request is (request id, command, time limit in s or None) or (-1, Cancel); the side that
# receives it stamps the limit into a Deadline (stamped()); (request id, command) has no limit.
# A reply is (request id, True, JSON bytes) or (request id, False, (error class name, message)).
# Both cross the worker's pipe pickled.
Request = tuple[int, Command | Cancel] | tuple[int, Command, float | None]
Job = tuple[int, Command]  # a request the worker answers (a Cancel is acted on, not answered)
Reply = tuple[int, bool, Any]


def stamped(request: Request | None) -> Any:
    """A request as received: its time limit turned into a Deadline from now."""
    if request is None or len(request) != 3:
        return request
    req_id, command, limit_s = request
    return (
        req_id,
        command,
        None if limit_s is None else Deadline(time.monotonic() + limit_s, limit_s),
    )


def execute(models: LiveModels, command: Command, run: PromptRun | None = None) -> dict[str, Any]:
    """The answer to one command; `run` is its text's forward when the batch already ran it."""
    match command:
        case TopFeatures(sae_id, text, k):
            return models.top_features(sae_id, text, k, run=run)
        case OneFeature(sae_id, feature, text):
            return models.one_feature(sae_id, feature, text, run=run)
        case PromptPage(sae_id, text, position, n_rows):
            return models.prompt_page(sae_id, text, position, n_rows)
        case Steer(sae_id, prompt, feature, mode, value, max_new_tokens):
            return models.steer(sae_id, prompt, feature, mode, value, max_new_tokens)
    raise SaescopeError(
        f"command: got {command!r}; the worker answers TopFeatures, OneFeature, PromptPage, Steer"
    )


def serve_requests(models: LiveModels, inbox: queue.Queue, reply: Callable[[Reply], None]) -> None:
    """Answer requests from `inbox` until it yields None. Everything queued is read before
    each step, so a request cancelled meanwhile (its client left) is dropped unanswered
    however long the queue; a step is either one request or, for activation requests, up to
    MAX_BATCH of them for one SAE sharing a forward."""
    backlog: dict[int, Command] = {}  # request id -> command, in arrival order
    deadlines: dict[int, Deadline] = {}
    while True:
        running = _take(inbox, backlog, deadlines, wait=not backlog)
        batch = _next_batch(backlog)
        due = {req_id: deadlines.pop(req_id) for req_id, _ in batch if req_id in deadlines}
        for answer in answer_batch(models, batch, due):
            reply(answer)
        if not running:
            return


def _take(
    inbox: queue.Queue, backlog: dict[int, Command], deadlines: dict[int, Deadline], wait: bool
) -> bool:
    """Move every queued message into `backlog` (waiting for one when `wait`), applying
    cancels; False once the stop message (None) came. A cancel always follows its request
    on the queue: one whose request is not in the backlog any more came too late."""
    try:
        message = inbox.get() if wait else inbox.get_nowait()
        while True:
            if message is None:
                return False
            req_id, command = message[:2]
            if isinstance(command, Cancel):
                backlog.pop(command.req_id, None)
                deadlines.pop(command.req_id, None)
            else:
                backlog[req_id] = command
                if len(message) == 3 and message[2] is not None:
                    deadlines[req_id] = message[2]
            message = inbox.get_nowait()
    except queue.Empty:
        return True


def _next_batch(backlog: dict[int, Command]) -> list[Job]:
    """The oldest request, with the other activation requests of its SAE when it is one."""
    if not backlog:
        return []
    first_id, first = next(iter(backlog.items()))
    if not isinstance(first, TopFeatures | OneFeature):
        return [(first_id, backlog.pop(first_id))]
    ids = [
        req_id
        for req_id, command in backlog.items()
        if isinstance(command, TopFeatures | OneFeature) and command.sae_id == first.sae_id
    ][:MAX_BATCH]
    return [(req_id, backlog.pop(req_id)) for req_id in ids]


def answer_batch(
    models: LiveModels, batch: list[Job], deadlines: dict[int, Deadline] | None = None
) -> list[Reply]:
    """The replies to a batch; each job runs under its deadline (None: no limit), the batch's
    shared forward under the latest of them, and a job already past its deadline not at all."""
    deadlines = deadlines or {}
    replies: list[Reply] = []
    late = [req_id for req_id, _ in batch if _past(deadlines.get(req_id))]
    for req_id in late:
        limit = deadlines[req_id].limit_s
        message = (
            f"the request waited past its time limit of {limit:g} s (the worker was busy) and "
            "was not run; try again when the server is less busy."
        )
        replies.append((req_id, False, (TimeLimitExceeded.__name__, message)))
    batch = [job for job in batch if job[0] not in late]
    shared = [deadlines.get(req_id) for req_id, _ in batch]
    latest = (
        None if None in shared else max((d for d in shared if d), key=lambda d: d.at, default=None)
    )
    commands = dict(batch)
    # the activation requests first, each answered as soon as its forward ran
    with _under(latest):
        for req_id, run in _shared_runs(models, batch):
            replies.append(_answer(models, req_id, commands.pop(req_id), run, deadlines))
    for req_id, command in commands.items():
        replies.append(_answer(models, req_id, command, None, deadlines))
    return replies


def _answer(
    models: LiveModels,
    req_id: int,
    command: Command,
    run: PromptRun | SaescopeError | None,
    deadlines: dict[int, Deadline],
) -> Reply:
    try:
        if isinstance(run, SaescopeError):
            raise run
        with torch.inference_mode(), _under(deadlines.get(req_id)):
            return (req_id, True, to_json(execute(models, command, run)))
    except SaescopeError as err:
        return (req_id, False, (type(err).__name__, str(err)))
    except Exception as err:
        return (req_id, False, ("Exception", f"{type(err).__name__}: {err}"))


def _past(deadline: Deadline | None) -> bool:
    return deadline is not None and time.monotonic() > deadline.at


def _under(deadline: Deadline | None) -> AbstractContextManager[None]:
    if deadline is None:
        return time_limit(None)
    return time_limit(deadline.at, deadline.limit_s)


def _shared_runs(
    models: LiveModels, batch: list[Job]
) -> Iterator[tuple[int, PromptRun | SaescopeError]]:
    """(request id, its PromptRun or error) for the batch's activation requests, their texts
    in shared forwards per SAE, one forward's at a time."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for req_id, command in batch:
        if isinstance(command, TopFeatures | OneFeature):
            groups.setdefault(command.sae_id, []).append((req_id, command.text))
    for sae_id, items in groups.items():
        answered: set[int] = set()
        try:
            for i, run in models.iter_prompt_runs(sae_id, [text for _, text in items]):
                answered.add(i)
                yield items[i][0], run
        except SaescopeError as err:  # the SAE is off, or the time ran out between forwards
            yield from ((req_id, err) for i, (req_id, _) in enumerate(items) if i not in answered)
