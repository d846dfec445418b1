"""The second, short pass: token windows, activations and log-prob effects of the chosen examples.

The streaming pass's accumulators keep only (activation, global token index) of each candidate
example: windows for every candidate that ever enters a top-k list would cost far more. Here the
contexts holding a chosen example are read again from the corpus (tokenizing is ~300x faster
than the model); their activations come back from the streaming pass's spool (analysis.spool)
or, for contexts past it, from running the model again (through every layer only where a top
example needs the final residual, cut after the last token any window needs); they are encoded,
and every example of every feature in them is filled in.

The examples come out one batch of contexts at a time (`ExampleBuilder.build` is a generator),
so that a store or file can write each batch away: what the pass holds is bounded by the
batch, the wanted positions (compact columns, features x examples) and the token ids of the
contexts read again, never by every example at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np
import torch

from saescope.analysis.config import AnalysisConfig
from saescope.analysis.effects import (
    DirectPath,
    LogprobEffects,
    contributions,
    direct_effects,
    effects_of_removal,
    logprob_effects,
    rows_of_stats,
)
from saescope.analysis.results import EXAMPLE_KINDS, Example
from saescope.analysis.sketch import token_priority
from saescope.analysis.sparse import SparseActs
from saescope.analysis.spool import ActivationSpool, final_residual_hook
from saescope.corpus import iter_context_batches
from saescope.errors import SaescopeError
from saescope.models import HookedModel
from saescope.progress import progress_bar
from saescope.sae import SAE

# loss-effect rows per vocabulary-sized computation: small, so the [rows, d_vocab] temporaries stay
# in cache
ROW_CHUNK = 32
# cells per direct_effects call: amortises the per-chunk torch ops around the C++ kernel, while the
# [cells, d_vocab] direction logits made per chunk for features past the kept table stay at 24 MiB
CELL_CHUNK = 128
# positions whose clean logits [positions, d_vocab] are held at once (256 x 49,152 floats = 48 MiB)
POSITION_BLOCK = 256
# cells whose contribution sizes and norm scales are computed at once ([n, d_model] temporaries)
SCALE_CHUNK = 4096
EFFECT_FIELDS = (
    "next_token",
    "boosted_ids",
    "boosted_values",
    "suppressed_ids",
    "suppressed_values",
)
TOP = EXAMPLE_KINDS.index("top")
INACTIVE_CHUNK = 4096  # inactive examples handed over per list


@dataclass(eq=False)
class Wanted:
    """The examples to fill in, one per row of these columns [n]: compact, since there are up to
    features x (top_k + quantile_intervals x per_interval) of them."""

    feature: torch.Tensor  # int64
    kind: torch.Tensor  # int64 index into EXAMPLE_KINDS
    rank: torch.Tensor  # int64
    interval: torch.Tensor  # int64
    token: torch.Tensor  # int64 global token index = context index * context_length + position
    value: torch.Tensor  # float32 activation

    def __len__(self) -> int:
        return len(self.feature)

    def take(self, index: torch.Tensor) -> Wanted:
        return Wanted(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def cat(parts: list[Wanted]) -> Wanted:
        return Wanted(
            *(torch.cat([getattr(part, f.name) for part in parts]) for f in fields(Wanted))
        )


@dataclass
class Plan:
    """Where the wanted examples are: the contexts holding any, and the order to run them in."""

    contexts: torch.Tensor  # [n_ctx] sorted context indices
    # [n] rows of Wanted grouped by context: context i's are by_context[starts[i]:starts[i + 1]]
    by_context: torch.Tensor
    starts: list[int]  # [n_ctx + 1]
    length: torch.Tensor  # [n_ctx] positions to run (windows, and a top example's next token)
    needs_final: torch.Tensor  # [n_ctx] bool: holds a top example (needs the final residual)
    spooled: torch.Tensor  # [n_ctx] bool: its activations are in the spool (no model run)
    # [n_ctx] the run order: by (spooled, needs_final, length, context), similar ones together
    order: torch.Tensor
    pool: dict[int, list[int]]  # context slot -> indices into the inactive pool of its tokens

    def rows(self, slot: int) -> torch.Tensor:
        return self.by_context[self.starts[slot] : self.starts[slot + 1]]


class ExampleBuilder:
    def __init__(
        self,
        model: HookedModel,
        sae: SAE,
        cfg: AnalysisConfig,
        directions: torch.Tensor,
        direction_logits: torch.Tensor,
        spool: ActivationSpool | None = None,
    ) -> None:
        self.model, self.sae, self.cfg = model, sae, cfg
        self.directions = directions  # [d_sae, d_model] residual-stream direction of each feature
        # [n_kept, d_vocab]: D_f of the first n_kept features (what fits in memory); the others' are
        # computed per chunk
        self.direction_logits = direction_logits
        self.direct = DirectPath(model)
        self.final_hook = final_residual_hook(model)
        self.spool = spool  # read instead of running the model, for the contexts it holds
        self.ablate = set(cfg.ablate_features)

    # --- which contexts -----------------------------------------------------------------

    def window(self, position: int) -> tuple[int, int]:
        before, after = self.cfg.window
        return max(0, position - before), min(self.cfg.context_length, position + after + 1)

    def window_end(self, positions: torch.Tensor) -> torch.Tensor:
        return (positions + self.cfg.window[1] + 1).clamp_max(self.cfg.context_length)

    def inactive_pool(self, contexts: torch.Tensor) -> torch.Tensor:
        """Global token indices [n_pool], in priority order, where inactive examples are sought."""
        n_pool = max(32, 4 * self.cfg.n_inactive) if self.cfg.n_inactive else 0
        if not n_pool or not len(contexts):
            return torch.zeros(0, dtype=torch.int64)
        C = self.cfg.context_length
        first = 0 if self.cfg.include_bos or not self.cfg.corpus.prepend_bos else 1
        tokens = (contexts[:, None] * C + torch.arange(first, C)).reshape(-1)
        prio = token_priority(torch.full_like(tokens, -1), tokens, self.cfg.seed)
        return tokens[torch.argsort(prio)[:n_pool]]

    def plan(self, wanted: Wanted, pool: torch.Tensor) -> Plan:
        C = self.cfg.context_length
        by_context = torch.argsort(wanted.token // C, stable=True)
        contexts, counts = torch.unique_consecutive(
            wanted.token[by_context] // C, return_counts=True
        )
        # each row's context, in by_context order
        slot = torch.repeat_interleave(torch.arange(len(contexts)), counts)
        last = torch.zeros(len(contexts), dtype=torch.int64)
        last.scatter_reduce_(0, slot, self.window_end(wanted.token[by_context] % C), "amax")
        pool_slot = torch.searchsorted(contexts, pool // C)
        last.scatter_reduce_(0, pool_slot, self.window_end(pool % C), "amax")
        # a top example's last position needs the next token's log-prob: one more position
        length = (last + 1).clamp_max(C)
        is_top = (wanted.kind[by_context] == TOP).long()
        needs_final = (
            torch.zeros(len(contexts), dtype=torch.int64)
            .scatter_reduce_(0, slot, is_top, "amax")
            .bool()
        )
        spooled = (
            self.spool.holds(contexts)
            if self.spool is not None
            else torch.zeros(len(contexts), dtype=torch.bool)
        )
        # contexts are sorted: ties stay in context order
        order = torch.argsort(length, stable=True)
        order = order[torch.argsort(needs_final[order].long(), stable=True)]
        order = order[torch.argsort(spooled[order].long(), stable=True)]
        pool_rows: dict[int, list[int]] = {}
        for j, s in enumerate(pool_slot.tolist()):
            pool_rows.setdefault(s, []).append(j)
        starts = [0, *counts.cumsum(0).tolist()]
        return Plan(contexts, by_context, starts, length, needs_final, spooled, order, pool_rows)

    # --- the pass -------------------------------------------------------------------------

    @torch.no_grad()
    def build(self, wanted: Wanted, progress: bool = True) -> Iterator[list[Example]]:
        """The examples, one list per batch of contexts as the pass runs, the inactive ones last:
        a caller that writes each list away never holds them all."""
        try:
            pool = self.inactive_pool(torch.unique(wanted.token // self.cfg.context_length))
            plan = self.plan(wanted, pool)
            # every needed context read again in one go: token ids only, small next to the model
            context_tokens = read_contexts(self.cfg, self.model.tokenizer, plan.contexts)
            pool_windows: list[tuple[np.ndarray, torch.Tensor, int, int] | None] = [None] * len(
                pool
            )
            bar = progress_bar(
                total=len(plan.contexts), unit="ctx", desc="examples", disable=not progress
            )
            for batch in self._batches(plan):
                slots = batch.tolist()
                yield self._run_batch(
                    slots, context_tokens[batch].long(), wanted, plan, pool, pool_windows
                )
                bar.update(len(slots))
            bar.close()
        finally:
            if self.spool is not None:
                self.spool.close()  # read to the end (a temporary one is removed)
        yield from self._inactive_examples(pool, pool_windows)

    def _batches(self, plan: Plan) -> Iterator[torch.Tensor]:
        """plan.order in batches of contexts all read from the spool, or all run by the model."""
        n_run = int((~plan.spooled).sum())  # the order puts them first
        for part in (plan.order[:n_run], plan.order[n_run:]):
            if len(part):
                yield from part.split(self.cfg.batch_size)

    def _run_batch(
        self,
        slots: list[int],
        tokens: torch.Tensor,
        wanted: Wanted,
        plan: Plan,
        pool: torch.Tensor,
        pool_windows: list,
    ) -> list[Example]:
        """The examples of a batch of contexts (slots into plan), tokens [b, ctx]; fills
        pool_windows."""
        C = self.cfg.context_length
        length = int(plan.length[slots].max())
        needs_final = bool(plan.needs_final[slots].any())
        hook = self.sae.hook_name
        if self.spool is not None and bool(plan.spooled[slots[0]]):
            contexts = plan.contexts[slots].tolist()
            cache = {
                k: v.to(self.model.device) for k, v in self.spool.read(contexts, length).items()
            }
        else:
            hooks = [hook, self.final_hook] if needs_final and hook != self.final_hook else [hook]
            cache = self.model.run_with_cache(
                tokens[:, :length].to(self.model.device), hooks, stop_early=True
            )
        # BOS is not analysed: shown inactive, as in the tables
        acts, stats = SparseActs.encode(
            self.sae, cache[hook], not self.cfg.include_bos and self.cfg.corpus.prepend_bos
        )
        examples: list[Example] = []
        top_rows: list[
            tuple[int, int, int, int]
        ] = []  # (example index, row, window start, window end)
        here = wanted.take(torch.cat([plan.rows(s) for s in slots]))
        row = torch.repeat_interleave(
            torch.arange(len(slots)), torch.tensor([len(plan.rows(s)) for s in slots])
        )
        window_acts = self._window_acts(acts, row, here.token % C, here.feature).numpy()
        # numpy views, sliced per example: hundreds of thousands of small torch slices cost far more
        token_array = tokens.numpy().astype(np.int32)
        contexts = plan.contexts[slots].tolist()
        for i, (r, f, kind, rank, interval, token, value) in enumerate(
            zip(row.tolist(), *(getattr(here, x.name).tolist() for x in fields(here)), strict=True)
        ):
            lo, hi = self.window(token % C)
            if kind == TOP:
                top_rows.append((len(examples), r, lo, hi))
            examples.append(
                Example(
                    feature=f,
                    kind=EXAMPLE_KINDS[kind],
                    rank=rank,
                    interval=interval,
                    token_ids=token_array[r, lo:hi].copy(),
                    acts=window_acts[i, : hi - lo].copy(),
                    center=token % C - lo,
                    max_act=value,
                    context_index=contexts[r],
                    position=token % C,
                )
            )
        for r, s in enumerate(slots):
            for j in plan.pool.get(s, []):
                position = int(pool[j]) % C
                lo, hi = self.window(position)
                pool_windows[j] = (
                    _ids(tokens[r, lo:hi]),
                    acts.dense(r, lo, hi),
                    position - lo,
                    contexts[r],
                )
        if top_rows:
            final = cache[self.final_hook if needs_final else hook]
            self._direct_effects(top_rows, tokens, final, acts, stats, examples)
            for i, row, lo, hi in top_rows:
                if examples[i].feature in self.ablate:
                    self._ablation_effects(examples[i], tokens[row, : min(C, hi + 1)], lo, hi)
        return examples

    def _window_acts(
        self, acts: SparseActs, rows: torch.Tensor, positions: torch.Tensor, features: torch.Tensor
    ) -> torch.Tensor:
        """[n, window width]: each feature's activations over the window around its position, from
        the window's first token (positions past the context's end read 0)."""
        lo = (positions - self.cfg.window[0]).clamp_min(0)
        at = lo[:, None] + torch.arange(sum(self.cfg.window) + 1)
        inside = at < acts.length
        return acts.get(rows[:, None], at.clamp_max(acts.length - 1), features[:, None]) * inside

    def _direct_effects(
        self,
        top_rows: list[tuple[int, int, int, int]],
        tokens: torch.Tensor,
        final: torch.Tensor,
        feature_acts: SparseActs,
        stats,
        examples: list[Example],
    ) -> None:
        """Fill loss_effects and hover tokens of top examples (where the feature fires)."""
        h, width = self.cfg.n_hover, sum(self.cfg.window) + 1
        index, rows, lo, hi = (torch.tensor(column) for column in zip(*top_rows, strict=True))
        features = torch.tensor([examples[i].feature for i in index.tolist()])
        positions = lo[:, None] + torch.arange(width)  # [E, width]
        inside = positions < hi[:, None]
        acts = feature_acts.get(
            rows[:, None], positions.clamp_max(feature_acts.length - 1), features[:, None]
        )
        e, o = torch.nonzero(inside & (acts > 0), as_tuple=True)  # the cells: (example, offset)
        # overlapping windows of one feature's top examples share cells: each (row, position,
        # feature) once
        keys = (rows[e] * self.cfg.context_length + positions[e, o]) * self.sae.d_sae + features[e]
        unique, inverse = torch.unique(keys, return_inverse=True)
        cell_feature, where = unique % self.sae.d_sae, unique // self.sae.d_sae
        effects = self._cell_effects(
            where // self.cfg.context_length,
            where % self.cfg.context_length,
            cell_feature,
            tokens,
            final,
            feature_acts,
            stats,
        )
        effects = LogprobEffects(*(getattr(effects, name)[inverse] for name in EFFECT_FIELDS))
        # dense [E, width(, h)] tables, each example's rows copied out (inactive positions: 0, -1)
        loss = torch.zeros(len(index), width)
        ids = torch.full((2, len(index), width, h), -1, dtype=torch.int32)
        values = torch.zeros(2, len(index), width, h)
        loss[e, o] = effects.next_token
        ids[0, e, o], ids[1, e, o] = effects.boosted_ids.int(), effects.suppressed_ids.int()
        values[0, e, o], values[1, e, o] = effects.boosted_values, effects.suppressed_values
        loss_np, ids_np, values_np = loss.numpy(), ids.numpy(), values.numpy()
        for j, (i, _, lo_j, hi_j) in enumerate(top_rows):
            n, ex = hi_j - lo_j, examples[i]
            ex.loss_effects = loss_np[j, :n].copy()
            ex.top_boosted, ex.top_boosted_values = (
                ids_np[0, j, :n].copy(),
                values_np[0, j, :n].copy(),
            )
            ex.top_suppressed, ex.top_suppressed_values = (
                ids_np[1, j, :n].copy(),
                values_np[1, j, :n].copy(),
            )

    def _cell_effects(
        self,
        rows: torch.Tensor,
        positions: torch.Tensor,
        features: torch.Tensor,
        tokens: torch.Tensor,
        final: torch.Tensor,
        feature_acts: SparseActs,
        stats,
    ) -> LogprobEffects:
        """Direct-path effects of features [n] at (rows [n], positions [n]). Cells are grouped by
        position: the clean logits and their logsumexp are computed once per position, shared by its
        features."""
        C, h, n = self.cfg.context_length, self.cfg.n_hover, len(rows)
        next_pos = positions + 1
        next_ids = torch.where(next_pos < C, tokens[rows, next_pos.clamp_max(C - 1)], -1)
        out = LogprobEffects(
            torch.zeros(n),
            torch.zeros(n, h, dtype=torch.long),
            torch.zeros(n, h),
            torch.zeros(n, h, dtype=torch.long),
            torch.zeros(n, h),
        )
        keys = rows * C + positions
        order = torch.argsort(keys, stable=True)
        unique, counts = torch.unique_consecutive(keys[order], return_counts=True)
        first_cell = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        alpha, a, b = self._cell_scales(rows, positions, features, final, feature_acts, stats)
        beta = self.direct.beta if self.direct.has_beta else None
        for start in range(0, len(unique), POSITION_BLOCK):
            block = unique[start : start + POSITION_BLOCK]
            resid = final[block // C, block % C]  # [P, d_model]
            logits = self.model.unembed(resid).float()  # [P, d_vocab]
            lse = torch.logsumexp(logits, -1)
            cells = order[first_cell[start] : first_cell[start + len(block)]]
            local = torch.repeat_interleave(
                torch.arange(len(block)), counts[start : start + len(block)]
            )
            # cells of features past the kept table last: every chunk but one reads the table or
            # none of it
            past = torch.argsort(
                (features[cells] >= len(self.direction_logits)).long(), stable=True
            )
            cells, local = cells[past], local[past]
            for cell, p in self._chunks(cells, local):
                f = features[cell]
                table, of_cell = (
                    (self.direction_logits, f)
                    if bool((f < len(self.direction_logits)).all())
                    else (
                        self.model.direction_logits(self.directions[f]).float(),
                        torch.arange(len(f)),
                    )
                )
                if self.direct.fast:
                    effects = direct_effects(
                        logits,
                        lse,
                        table,
                        p,
                        of_cell,
                        a[cell],
                        b[cell],
                        beta,
                        next_ids[cell],
                        h,
                        ROW_CHUNK,
                    )
                else:
                    # the slow path (unembed of every row), or the first chunk (it checks the
                    # identity)
                    with_f = logits[p]  # a copy: becomes the logits without the feature
                    diff = self.direct.logit_diff(
                        resid[p], with_f, alpha[cell], self.directions[f], table[of_cell]
                    )
                    effects = effects_of_removal(with_f, diff, lse[p], next_ids[cell], h)
                for name in EFFECT_FIELDS:
                    getattr(out, name)[cell] = getattr(effects, name)
        return out

    def _cell_scales(
        self,
        rows: torch.Tensor,
        positions: torch.Tensor,
        features: torch.Tensor,
        final: torch.Tensor,
        feature_acts: SparseActs,
        stats,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per cell [n]: alpha, the size of the feature's contribution along its residual direction,
        and DirectPath.scales' a and b [n, 1]. SCALE_CHUNK cells at a time: a dozen small ops per
        chunk of vocabulary-sized work cost more than that work once the machine is busy."""
        parts = [(torch.zeros(0), torch.zeros(0, 1), torch.zeros(0, 1))]
        for cut in torch.arange(len(rows)).split(SCALE_CHUNK):
            f, r, q = features[cut], rows[cut], positions[cut]
            added = contributions(
                self.sae, feature_acts.get(r, q, f), f, rows_of_stats(stats, r, q)
            )
            alpha, direction, resid = self._alpha(added, f), self.directions[f], final[r, q]
            parts.append(
                (
                    alpha,
                    *self.direct.scales(resid, self.direct.removed(resid, alpha, direction), alpha),
                )
            )
        alpha, a, b = (torch.cat(column) for column in zip(*parts, strict=True))
        return alpha, a, b

    def _chunks(
        self, cells: torch.Tensor, local: torch.Tensor
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(cells, their rows of the block's logits) in chunks: ROW_CHUNK on the slow path,
        CELL_CHUNK once the direct-path identity holds (asked again before each chunk: the first one
        checks it)."""
        start = 0
        while start < len(cells):
            end = start + (CELL_CHUNK if self.direct.fast else ROW_CHUNK)
            yield cells[start:end], local[start:end]
            start = end

    def _alpha(self, added: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Contributions [n, d_out] (parallel to W_dec[f]) -> their size alpha [n] along the
        residual direction u_f (so that the contribution to the residual is alpha * u_f)."""
        W_dec = self.sae.W_dec.detach()[features].to(added.dtype)
        return (added * W_dec).sum(-1) / (W_dec * W_dec).sum(-1).clamp_min(1e-30)

    def _ablation_effects(self, ex: Example, tokens: torch.Tensor, lo: int, hi: int) -> None:
        """Real ablation: subtract the feature's contribution at the hook at every position and
        run the rest of the model; effects at every window position."""
        f, sae, hook = ex.feature, self.sae, self.sae.hook_name
        tokens = tokens[None].to(self.model.device)

        def remove_feature(x: torch.Tensor) -> torch.Tensor:
            acts, stats = sae.encode_with_stats(x)
            values = acts[..., f].reshape(-1)
            features = torch.full_like(values, f, dtype=torch.long)
            flat_stats = (
                None
                if stats is None
                else type(stats)(
                    **{
                        k: None if getattr(stats, k) is None else getattr(stats, k).reshape(-1, 1)
                        for k in ("scale", "shift", "std")
                    }
                )
            )
            return x - contributions(sae, values, features, flat_stats).reshape(x.shape).to(x.dtype)

        clean = self.model.forward(tokens)[0]
        ablated = self.model.run_with_replacement(tokens, {hook: remove_feature})[0]
        positions = torch.arange(lo, hi)
        n_tok = tokens.shape[1]
        next_ids = torch.where(
            positions + 1 < n_tok, tokens[0, (positions + 1).clamp_max(n_tok - 1)], -1
        )
        effects = logprob_effects(clean[positions], ablated[positions], next_ids, self.cfg.n_hover)
        for offset in range(hi - lo):
            _set_effects(ex, offset, effects, offset)

    def _inactive_examples(self, pool: torch.Tensor, pool_windows: list) -> Iterator[list[Example]]:
        if not len(pool):
            return
        # [pool, d_sae]
        centers = torch.stack([acts[center] for _, acts, center, _ in pool_windows])
        inactive = centers <= 0
        rank = inactive.long().cumsum(0) - 1  # order among this feature's inactive pool tokens
        picks = torch.nonzero(inactive & (rank < self.cfg.n_inactive))  # (pool index, feature)
        for chunk in picks.split(INACTIVE_CHUNK):
            out = []
            for j, f in chunk.tolist():
                token_ids, acts, center, context = pool_windows[j]
                out.append(
                    Example(
                        feature=f,
                        kind="inactive",
                        rank=int(rank[j, f]),
                        interval=-1,
                        token_ids=token_ids,
                        acts=_values(acts[:, f]),
                        center=center,
                        max_act=0.0,
                        context_index=context,
                        position=int(pool[j]) % self.cfg.context_length,
                    )
                )
            yield out


def _set_effects(ex: Example, offset: int, effects: LogprobEffects, n: int) -> None:
    """Overwrite one window position of a top example's effects (_direct_effects filled them)."""
    loss, boosted, boosted_values = ex.loss_effects, ex.top_boosted, ex.top_boosted_values
    suppressed, suppressed_values = ex.top_suppressed, ex.top_suppressed_values
    if not (
        isinstance(loss, np.ndarray)
        and isinstance(boosted, np.ndarray)
        and isinstance(boosted_values, np.ndarray)
        and isinstance(suppressed, np.ndarray)
        and isinstance(suppressed_values, np.ndarray)
    ):
        raise SaescopeError(f"feature {ex.feature}: ablation effects need its direct effects first")
    loss[offset] = float(effects.next_token[n])
    boosted[offset] = effects.boosted_ids[n].cpu().numpy()
    boosted_values[offset] = effects.boosted_values[n].cpu().numpy()
    suppressed[offset] = effects.suppressed_ids[n].cpu().numpy()
    suppressed_values[offset] = effects.suppressed_values[n].cpu().numpy()


# Examples hold their own small copies: a view would keep the whole batch tensor alive.
def _ids(t: torch.Tensor) -> np.ndarray:
    return t.to(device="cpu", dtype=torch.int32).numpy().copy()


def _values(t: torch.Tensor) -> np.ndarray:
    return t.to(device="cpu", dtype=torch.float32).numpy().copy()


def read_contexts(cfg: AnalysisConfig, tokenizer, contexts: torch.Tensor) -> torch.Tensor:
    """Token ids [n, ctx] (int32) of sorted, distinct indices [n] of cfg.corpus's context stream."""
    found = torch.zeros(len(contexts), cfg.context_length, dtype=torch.int32)
    wanted = contexts.tolist()
    if not wanted:
        return found
    index, next_found = 0, 0
    for batch in iter_context_batches(cfg.corpus, tokenizer, 256):
        for row in batch:
            if next_found < len(wanted) and index == wanted[next_found]:
                found[next_found] = row
                next_found += 1
            index += 1
        if next_found == len(wanted):
            break
    return found
