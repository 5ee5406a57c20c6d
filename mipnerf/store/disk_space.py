"""Disk space for a write: what a pytree takes, what the disk has, and why a write failed."""

import errno
import os
import re
import shutil
from typing import Optional

import jax


def nbytes(tree) -> int:
    """The bytes of the arrays of `tree`: about what a checkpoint of it takes on disk."""
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


class NoSpace(OSError):
    """Fewer bytes free than a write needs (ENOSPC, before writing); `free` is how many there are."""

    def __init__(self, free: int):
        super().__init__(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.free = free


def check_free(directory, needed: int) -> None:
    """Raises `NoSpace` when the disk of `directory` has fewer than `needed` bytes free (`OSError`
    when that cannot be asked)."""
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise NoSpace(free)


def error_code(e: BaseException) -> Optional[int]:
    """The errno of the OSError behind `e`, also where TensorStore gives it only in its message."""
    while e is not None:
        if isinstance(e, OSError) and e.errno:
            return e.errno
        found = re.search(r"os_error_code='(\d+)'", str(e))
        if found:
            return int(found.group(1))
        e = e.__cause__ or e.__context__
    return None


def write_failure(e: BaseException, needed: int) -> Optional[str]:
    """Why a write of `needed` bytes failed with `e`, in a few words, when an OSError is behind it
    (no space: with the bytes needed and, when known, free); None otherwise."""
    code = error_code(e)
    if code == errno.ENOSPC:
        left = f", {megabytes(e.free)} free" if isinstance(e, NoSpace) else ""
        return f"no space left on the device (the checkpoint needs about {megabytes(needed)}{left})"
    return None if code is None else os.strerror(code)
