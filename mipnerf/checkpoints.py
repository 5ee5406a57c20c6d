"""Orbax checkpoints of the train state: saved every N steps, the last K kept, written atomically.

Checkpoint folders are named by step under `exp_dir/checkpoints/`. Orbax writes each one into
a temporary folder and renames it when complete, so an interrupted save never hides the last
good checkpoint.
"""

import pathlib
from typing import Optional

import jax
import orbax.checkpoint as ocp

from mipnerf.errors import CheckpointError


def checkpoint_dir(exp_dir) -> pathlib.Path:
    """The folder of a run's checkpoints: `exp_dir/checkpoints`."""
    return pathlib.Path(exp_dir) / "checkpoints"


class Checkpointer:
    """Saves and restores a pytree (the train state) by step number.

    With `create=False` a missing folder is not created (for restoring only).
    """

    def __init__(self, directory, keep: int = 3, create: bool = True):
        self.directory = pathlib.Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=create)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> Optional[int]:
        """The step of the newest complete checkpoint, or None."""
        return self._manager.latest_step()

    def save(self, step: int, state) -> None:
        """Starts writing `state` as checkpoint `step` (in the background; see `wait`)."""
        self._manager.save(step, args=ocp.args.StandardSave(state), force=True)

    def restore(self, target, step: Optional[int] = None):
        """Restores checkpoint `step` (default: the latest) into the structure, shapes and shardings of `target`."""
        step = self.latest_step() if step is None else step
        if step is None or step not in self._manager.all_steps():
            found = sorted(self._manager.all_steps())
            hint = (f"found steps: {found}; pick one of them" if found
                    else "found none; train first with train.py and the same exp_dir")
            raise CheckpointError(f"no checkpoint {'' if step is None else f'for step {step} '}in {self.directory} "
                                  f"({hint})")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        try:
            restored = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"checkpoint {self.directory / str(step)} does not fit this config's model "
                                  f"(was it trained with another config?): {str(e).splitlines()[0]}") from e
        return jax.tree.unflatten(jax.tree.structure(target), jax.tree.leaves(restored))

    def wait(self) -> None:
        """Blocks until every save has been written."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
