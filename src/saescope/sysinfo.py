"""What the machine has to spare right now (memory), for stages that size their buffers by it."""

from __future__ import annotations

MEMINFO = "/proc/meminfo"


def available_memory() -> int | None:
    """Bytes of memory available without swapping (Linux's MemAvailable); None where unknown."""
    try:
        with open(MEMINFO) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file counts in KiB
    except (OSError, ValueError):
        return None
    return None
