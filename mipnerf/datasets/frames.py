"""What every loader does with a scene's files and frames before reading images: parse its JSON,
check the downsampling factor, and pick one process's share of the frames."""

import json
from pathlib import Path

import numpy as np

from mipnerf.errors import ConfigError, DatasetError


def read_json(data_dir: Path, name: str, what: str):
    """Parses `data_dir/name`, raising `DatasetError` naming the folder or file when it is missing or broken.

    what: what the file holds, for the messages (e.g. "the camera file of the 'train' split").
    """
    if not data_dir.is_dir():
        state = "is not a folder" if data_dir.exists() else "does not exist"
        raise DatasetError(f"dataset folder {data_dir} {state}; expected a folder holding {name}")
    path = data_dir / name
    if not path.is_file():
        raise DatasetError(f"{path} is missing; expected {what}")
    try:
        return json.loads(path.read_text(encoding="utf-8")), path
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path} cannot be read as UTF-8 text: {e}") from None


def check_factor(factor) -> None:
    """Raises `ConfigError` unless the downsampling `factor` is an integer >= 1."""
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ConfigError(f"downsampling factor is {factor!r}; expected an integer >= 1")


def process_frames(num_frames: int, process_index: int, process_count: int, json_path="") -> np.ndarray:
    """The indices of the frames one process of a multi-host run loads: its contiguous block."""
    block = np.array_split(np.arange(num_frames), process_count)[process_index]
    if not len(block):
        raise DatasetError(f"{json_path}: {num_frames} frames cannot be shared by {process_count} processes; "
                           f"expected at least one frame per process")
    return block
