"""SAEAdam: torch's Adam over an SAE's parameters, stepping a latent-major W_enc through a
contiguous alias.

The sparse training paths store W_enc [d_in, d_sae] as the transpose of a contiguous
[d_sae, d_in] tensor (trainer.store_latent_major). torch's fused Adam copies a non-contiguous
parameter into a contiguous one and back on every step: a transposing copy of the whole
encoder, ~2% of a TopK step at d_sae 9216. Adam is elementwise, so stepping the contiguous
transpose that shares W_enc's memory gives the same numbers without the copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


def transposed_contiguous(p: torch.Tensor) -> bool:
    return p.dim() == 2 and not p.is_contiguous() and p.T.is_contiguous()


class SAEAdam(torch.optim.Adam):
    def __init__(self, params: Iterable[torch.nn.Parameter], **kwargs) -> None:
        # parameter -> the leaf that shares its memory as its contiguous
        # transpose, stepped in its place
        self.aliases: dict[torch.Tensor, torch.nn.Parameter] = {}
        stepped = []
        for p in params:
            if transposed_contiguous(p):
                self.aliases[p] = torch.nn.Parameter(p.detach().T)
                stepped.append(self.aliases[p])
            else:
                stepped.append(p)
        super().__init__(stepped, **kwargs)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        for p, alias in self.aliases.items():
            alias.grad = None if p.grad is None else p.grad.T  # a view: no copy
        return super().step(closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        for p in self.aliases:  # autograd writes the parameter's own .grad, not the alias's
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def moments(self, param: torch.Tensor) -> list[torch.Tensor]:
        """param's Adam moments (exp_avg, exp_avg_sq) in param's own layout, as views: writing
        into them writes the optimizer's state. Empty before the first step."""
        alias = self.aliases.get(param)
        state = self.state.get(param if alias is None else alias, {})
        found = [state[name] for name in ("exp_avg", "exp_avg_sq") if name in state]
        return [t.T for t in found] if alias is not None else found
