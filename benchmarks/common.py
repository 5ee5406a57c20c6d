"""Helpers shared by the benchmarks (no flags here: each benchmark defines its own)."""

import resource

import jax


def peak_memory_mb() -> float:
    """Peak device memory on an accelerator, else the process's peak resident memory (host RSS)."""
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
