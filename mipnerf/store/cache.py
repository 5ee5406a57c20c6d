"""The package's cache folder: the demo scene and compiled XLA programs live under it."""

import os
from pathlib import Path


def cache_root() -> Path:
    """`$MIPNERF_CACHE`, else `~/.cache/mipnerf`."""
    return Path(os.environ.get("MIPNERF_CACHE") or Path.home() / ".cache" / "mipnerf")


def enable_compilation_cache() -> None:
    """Keeps compiled XLA programs that took over a second to build in `cache_root()/jax`, so that a
    resumed run, eval.py and render.py start without compiling again (JAX's persistent cache)."""
    import jax

    if jax.config.jax_compilation_cache_dir is None:  # a folder the user chose wins
        jax.config.update("jax_compilation_cache_dir", str(cache_root() / "jax"))
