"""Multi-host runs: `jax.distributed` started from the config or the usual environment variables.

Every process runs the same command; they differ only in `process_id`. Each one then sees every
device of every host in `jax.devices()`, and one jitted step spans them all.
"""

import os
from typing import Optional

import jax
import numpy as np
from jax.sharding import Mesh

from mipnerf.errors import ConfigError

# Config field -> the environment variable read when the field is left at its default.
ENV = {"coordinator_address": "JAX_COORDINATOR_ADDRESS", "num_processes": "JAX_NUM_PROCESSES",
       "process_id": "JAX_PROCESS_ID"}


def _env_int(field: str) -> Optional[int]:
    value = os.environ.get(ENV[field], "")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {ENV[field]}={value!r}: expected an integer") from None


def settings(config) -> Optional[dict]:
    """The arguments of `jax.distributed.initialize` for a multi-host run, or None for a single process.

    Raises ConfigError naming the field (or variable) when the settings are incomplete.
    """
    address = config.coordinator_address or os.environ.get(ENV["coordinator_address"], "")
    num = config.num_processes or _env_int("num_processes") or 0
    pid = config.process_id if config.process_id >= 0 else _env_int("process_id")
    if not address and num <= 1:
        return None
    if not address:
        raise ConfigError(f"config.num_processes={num}: a multi-host run also needs config.coordinator_address "
                          f"(or ${ENV['coordinator_address']}), expected 'host:port' of process 0")
    if ":" not in address:
        raise ConfigError(f"config.coordinator_address={address!r}: expected 'host:port'")
    if num < 1:
        raise ConfigError(f"config.coordinator_address={address!r} is set: expected config.num_processes "
                          f"(or ${ENV['num_processes']}) >= 1 too")
    if pid is None or not 0 <= pid < num:
        raise ConfigError(f"config.process_id={pid}: expected this process's index in [0, {num}) "
                          f"(or ${ENV['process_id']})")
    return dict(coordinator_address=address, num_processes=num, process_id=pid)


def initialize(config) -> None:
    """Starts `jax.distributed` when the config or environment asks for several processes.

    Must run before anything else touches JAX's devices.
    """
    args = settings(config)
    if args is not None:
        jax.distributed.initialize(**args)


def is_primary() -> bool:
    """Whether this process writes logs, tensorboard and other single-copy files (process 0)."""
    return jax.process_index() == 0


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh over `devices` (default: every device of every process), with the single axis "data"."""
    return Mesh(np.array(jax.devices() if devices is None else devices), ("data",))
