"""Built-in scenes rendered once into the package's cache folder and reused afterwards."""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from mipnerf.errors import DatasetError
from mipnerf.store.cache import cache_root


def cached_scene(name: str, render: Callable[[Path], None], cache_dir=None, what: str = "the demo scene") -> Path:
    """The folder `<cache_dir or cache_root()>/<name>`, filled by `render(folder)` on first use.

    The scene is rendered into a temporary folder beside the target and renamed into place at
    the end, so an interrupted render leaves nothing that looks complete, and of two processes
    rendering at once the later one discards its copy. `what` names the scene in error messages.
    """
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    target = root / name
    if target.is_dir():
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    except OSError as e:
        raise DatasetError(
            f"cannot create the cache folder {root} of {what} ({e}); set MIPNERF_CACHE to a writable folder"
        ) from None
    try:
        render(scratch)
        os.rename(scratch, target)
    except OSError as e:
        shutil.rmtree(scratch, ignore_errors=True)
        if not target.is_dir():
            raise DatasetError(
                f"cannot write {what} into {target} ({e}); set MIPNERF_CACHE to a writable folder"
            ) from None
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return target
