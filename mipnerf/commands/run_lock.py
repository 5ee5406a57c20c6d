"""One training process per exp_dir: `exp_dir/train.lock` holds the running process's id and host.

A second train.py on the same exp_dir stops at start. A lock left by a process that is gone
(killed, or its machine restarted) is taken over with a note. A lock from another host cannot
be checked from here: it is reported with how to clear it.
"""

import contextlib
import json
import os
import pathlib
import socket
import time
from typing import Callable, Optional

from mipnerf.errors import MipNerfError

LOCK_FILE = "train.lock"


class RunLocked(MipNerfError):
    """Another train.py holds the lock of this exp_dir."""


def _start_ticks(pid: int) -> Optional[int]:
    """When process `pid` started, in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, ticks: Optional[int]) -> bool:
    """Whether process `pid` (started at `ticks`, when known) is still running on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, run by another user
    now = _start_ticks(pid)
    return ticks is None or now is None or now == ticks


def _describe(holder: dict) -> str:
    return f"process {holder.get('pid')} on {holder.get('host')} since {holder.get('started', '?')}"


@contextlib.contextmanager
def hold(exp_dir, log: Callable[[str], None] = print):
    """Holds `exp_dir`'s lock for the block; raises `RunLocked` (one line) when a live process holds it.

    An exp_dir made for the lock is removed again if the block leaves it empty (bad input writes nothing).
    """
    exp_dir = pathlib.Path(exp_dir)
    made = not exp_dir.exists()
    exp_dir.mkdir(parents=True, exist_ok=True)
    path = exp_dir / LOCK_FILE
    pid, host = os.getpid(), socket.gethostname()
    mine = {"pid": pid, "host": host, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "ticks": _start_ticks(pid)}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text())
            except (OSError, ValueError):
                holder = {}  # cut short while being written: its writer died at once
            if holder.get("host", host) != host:
                raise RunLocked(f"{exp_dir} is in use by train.py ({_describe(holder)}); wait for it to end, or delete "
                                f"{path} if that run is gone") from None
            if holder.get("pid") not in (None, pid) and _alive(int(holder["pid"]), holder.get("ticks")):
                raise RunLocked(f"{exp_dir} is in use by train.py ({_describe(holder)}); stop it first, or train "
                                f"into another --config.exp_dir") from None
            if holder.get("pid") not in (None, pid):
                log(f"note: took over the lock of {_describe(holder)}, which is no longer running")
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
        break
    else:
        raise RunLocked(f"{path} could not be taken; another train.py may be starting on {exp_dir}")
    try:
        yield
    finally:
        try:
            if json.loads(path.read_text()).get("pid") == pid:
                path.unlink()
        except (OSError, ValueError):
            pass
        if made:
            _remove_empty(exp_dir)


def _remove_empty(folder: pathlib.Path) -> None:
    """Removes `folder` if it holds nothing but empty folders."""
    for sub in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if sub.is_dir():
            with contextlib.suppress(OSError):
                sub.rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()
