"""How much memory a step may take, and a refusal in one line before it takes more.

Dense item–item models (EASE, item-kNN) grow with the square of the catalogue: at 20k
items one float32 matrix is 1.6 GB, and a float64 solve with its copies peaked near 10 GB.
Rather than let the kernel kill the process (or a BLAS library crash on it), the fit
estimates its peak first and refuses with the estimate and what the machine has.

Example:
    >>> need = 2 * 20_000 ** 2 * 4          # two float32 20k × 20k matrices
    >>> check_memory(need, "EASE on 20,000 items")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from contrec.errors import ConfigError

__all__ = ["available_memory", "check_memory", "format_bytes"]

# what a fit may plan to use of the memory that is free now: the rest is for the
# interpreter, the data, the index the model is served from and everything else running
USABLE_SHARE = 0.8


def available_memory() -> int | None:
    """Bytes this process can still use: the smaller of MemAvailable and the cgroup's room (None if unknown)."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    try:  # a container's limit (cgroup v2) may be far below the machine's memory
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit.isdigit() and used.isdigit():
            found.append(int(limit) - int(used))
    except OSError:
        pass
    return min(found) if found else None


def format_bytes(n: float) -> str:
    """``1.6 GB``-style sizes for messages."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def check_memory(need: int, what: str, hint: str = "") -> None:
    """Raise `ConfigError` (one line: the estimate and the machine's free memory) when ``need`` does not fit."""
    free = available_memory()
    if free is None or need <= USABLE_SHARE * free:
        return
    raise ConfigError(f"{what} needs about {format_bytes(need)} of memory, but only {format_bytes(free)} is free "
                      f"on this machine (a fit may plan for {USABLE_SHARE:.0%} of it){'; ' + hint if hint else ''}")
