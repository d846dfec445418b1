"""Learning-rate and sparsity-penalty schedules: functions of the step,
so a resume needs only the step."""

from __future__ import annotations


def lr_factor(step: int, total_steps: int, warmup_fraction: float, decay_fraction: float) -> float:
    """Linear warm-up from ~0 to 1, constant, then linear decay to
    0 over the last decay_fraction."""
    warmup = int(total_steps * warmup_fraction)
    decay = int(total_steps * decay_fraction)
    if step < warmup:
        return (step + 1) / warmup
    decay_start = total_steps - decay
    if decay > 0 and step >= decay_start:
        return max(0.0, (total_steps - step) / decay)
    return 1.0


def warmup_factor(step: int, total_steps: int, warmup_fraction: float) -> float:
    """Linear ramp of the sparsity penalty from 0 to 1 over the
    first warmup_fraction of training."""
    warmup = int(total_steps * warmup_fraction)
    return min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
