"""C++ kernels for the CPU, compiled on first use by torch's extension builder (g++ and ninja).

The library lands in torch's extension cache (TORCH_EXTENSIONS_DIR, by default
~/.cache/torch_extensions) and is rebuilt only when its source changes; `make setup` builds it
once. Where it cannot be built (no compiler), callers fall back to torch's own ops: the same
results, slower.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import torch

log = logging.getLogger(__name__)
SOURCES = [
    Path(__file__).with_name(name)
    for name in ("topk_rows.cpp", "cell_effects.cpp", "row_histograms.cpp")
]
CELL_EFFECTS_MAX_H = 64  # kMaxH in cell_effects.cpp: its top-h arrays are fixed-size


@functools.cache
def available() -> bool:
    """Whether the kernels are loaded (built first if needed); False,
    with a warning, if they cannot be."""
    if os.environ.get("SAESCOPE_NO_KERNELS"):
        return False
    try:
        from torch.utils.cpp_extension import load

        # -fopenmp: at::parallel_for is inlined from ATen's headers and runs serially without it;
        # the library then shares the OpenMP runtime torch has already loaded (same soname)
        load(
            name="saescope_kernels",
            sources=[str(s) for s in SOURCES],
            extra_cflags=["-O3", "-fopenmp"],
            extra_ldflags=["-fopenmp"],
            is_python_module=False,
        )
    except Exception as error:  # no compiler, no ninja, a failed build: the fallback still works
        log.warning(
            "saescope's C++ kernels could not be built (%s); using torch's ops instead (slower)",
            error,
        )
        return False
    return True


def topk_rows(pre: torch.Tensor, bias: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest of pre + bias in every row, unsorted: (values [n, k], columns [n, k]).

    pre [n, d] may be overwritten (the fallback adds the bias in place); bias [d].
    """
    if pre.device.type == "cpu" and pre.dtype == bias.dtype == torch.float32 and available():
        return torch.ops.saescope.topk_rows(pre, bias, k)
    return pre.add_(bias).topk(k, dim=-1, sorted=False)


def row_histograms(
    values: torch.Tensor, n_bins: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Counts [n, n_bins] of each row of values [n, d] in n_bins equal bins between the row's
    minimum and maximum, and those (lo [n], hi [n]) (row_histograms.cpp).

    The caller checks `available()` and a float32 CPU tensor; the torch version is
    analysis.directions.row_histograms."""
    if not available():
        raise RuntimeError("saescope's C++ kernels are not built")
    return torch.ops.saescope.row_histograms(values, n_bins)


def cell_effects(
    logits: torch.Tensor,
    lse: torch.Tensor,
    directions: torch.Tensor,
    cell_pos: torch.Tensor,
    cell_feat: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    beta: torch.Tensor | None,
    next_ids: torch.Tensor,
    h: int,
) -> tuple[torch.Tensor, ...]:
    """Direct-path log-prob effects of cells (cell_effects.cpp): diff = a * (logits[pos] - beta) + b * directions[feat],
    -> (next_token [n], up_ids [n, h], up_values [n, h], down_ids [n, h], down_values [n, h]).

    The caller checks `available()` and float32 inputs; the torch version is
    analysis.effects.direct_effects."""
    if not available():  # also what loads the library
        raise RuntimeError("saescope's C++ kernels are not built")
    no_beta = torch.empty(0, dtype=torch.float32)
    return torch.ops.saescope.cell_effects(
        logits,
        lse,
        directions,
        cell_pos,
        cell_feat,
        a.reshape(-1),
        b.reshape(-1),
        no_beta if beta is None else beta,
        next_ids,
        h,
    )
