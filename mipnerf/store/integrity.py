"""Integrity records of checkpoint folders: the size and SHA-256 of every file, in `integrity.json`.

Written once a checkpoint is complete; checked before it is read, so that a checkpoint whose
files were cut short, lost or changed is never restored.
"""

import hashlib
import json
import os
import pathlib
from typing import Optional

INTEGRITY = "integrity.json"


def _sha256(path: pathlib.Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_integrity(folder: pathlib.Path) -> None:
    """Records the size and SHA-256 of every file under `folder` in `folder/integrity.json` (atomically)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != INTEGRITY)
    record = {str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in files}
    tmp = folder / (INTEGRITY + ".tmp")
    tmp.write_text(json.dumps({"files": record}, indent=1))
    os.replace(tmp, folder / INTEGRITY)


def check_integrity(folder: pathlib.Path) -> Optional[str]:
    """What is wrong with the files of checkpoint `folder`, in a few words; None when they are whole.

    Raises `FileNotFoundError` when the folder has no integrity record (written before records
    were kept, or cut off between Orbax's rename and the record), so nothing can be said.
    """
    try:
        record = json.loads((folder / INTEGRITY).read_text())["files"]
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError):
        return f"its {INTEGRITY} cannot be read"
    for name, expected in record.items():
        path = folder / name
        if not path.is_file():
            return f"file {name} is missing"
        size = path.stat().st_size
        if size != expected["bytes"]:
            return f"file {name} has {size} of its {expected['bytes']} bytes"
        if _sha256(path) != expected["sha256"]:
            return f"file {name} does not match its checksum"
    return None
