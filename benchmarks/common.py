"""Helpers shared by the benchmarks (no flags here: each benchmark defines its own)."""

import resource

import jax


def peak_memory_mb() -> float:
    """Peak device memory on an accelerator, else the process's peak resident memory (host RSS)."""
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


class Figures(dict):
    """A benchmark's figures, each printed as soon as it is set (a run cut short keeps them)."""

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}", flush=True)

    def update(self, **figures):
        for key, value in figures.items():
            self[key] = value
