"""Orbax checkpoints of the train state: saved every N steps, the last K kept, checked before use.

Checkpoint folders are named by step under `exp_dir/checkpoints/`. Orbax writes each one into
a temporary folder and renames it when complete; then `integrity.json` records the size and
SHA-256 of every file in it. Restoring checks those first: a checkpoint whose files were cut
short, lost or changed is never read. Without a step, the newest whole checkpoint is used and
each damaged newer one is moved aside to `corrupt-STEP/` (never deleted). A failed save leaves
no folder behind and raises `CheckpointError` in one line; the older checkpoints stay as they were.
A whole checkpoint that holds other arrays than the model's "does not fit this config's model";
any other failure to restore it is named by its exception's type and message.
"""

import dataclasses
import gc
import pathlib
import re
import shutil
import time
from typing import Callable, Optional

import jax
import orbax.checkpoint as ocp

from mipnerf.errors import CheckpointError
from mipnerf.store.disk_space import check_free, nbytes, write_failure
from mipnerf.store.integrity import INTEGRITY, check_integrity, write_integrity
from mipnerf.store.quiet_stderr import quiet

_DRAIN_SECONDS = 1.0
_ITEM = "default"  # the folder of a checkpoint's one item, as the manager names it


def checkpoint_dir(exp_dir) -> pathlib.Path:
    """The folder of a run's checkpoints: `exp_dir/checkpoints`."""
    return pathlib.Path(exp_dir) / "checkpoints"


def _is_read_error(e: BaseException) -> bool:
    """Whether `e` comes from files that cannot be read (cut short, lost), not from another tree."""
    while e is not None:
        if isinstance(e, OSError) or re.search(r"OUT_OF_RANGE|DATA_LOSS|NOT_FOUND|Error (reading|opening)", str(e)):
            return True
        e = e.__cause__ or e.__context__
    return False


# What Orbax's restore says when the saved tree has other keys than the target's, or an array of
# another shape (its messages, pinned against the installed Orbax by tests/test_faults.py). It
# restores numpy arrays of other shapes, and other dtypes, without a word, so `_restore_step`
# compares the shapes and dtypes itself first.
TREE_MISMATCH = re.compile(r"Structure mismatch: Target path|tree structures do not match|"
                           r"Requested shape: .* is not compatible with the stored shape")


def _is_tree_mismatch(e: BaseException) -> bool:
    """Whether `e` is Orbax's refusal of a target whose tree or shapes differ from the checkpoint's."""
    while e is not None:
        if TREE_MISMATCH.search(str(e)):
            return True
        e = e.__cause__ or e.__context__
    return False


def _innermost(e: BaseException) -> BaseException:
    while e.__cause__ is not None:
        e = e.__cause__
    return e


def _root_cause(e: BaseException) -> str:
    """The innermost cause of an exception chain, in one line of at most 160 characters."""
    e = _innermost(e)
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return text if len(text) <= 160 else text[:157] + "..."


def _shapes(tree) -> list:
    return sorted((tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves(tree))


def stored_fields(state):
    """What a checkpoint holds of a train state (a dataclass): its fields that are not None, by
    name. Fields added to the state later, and None when unused (pose refinement's), are then not
    in the checkpoint at all, so checkpoints written before they existed still restore. Any other
    pytree is held as it is."""
    if not dataclasses.is_dataclass(state):
        return state
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state) if getattr(state, f.name) is not None}


class Damaged(Exception):
    """A checkpoint's files are not whole; the message says how, in a few words."""


class Checkpointer:
    """Saves and restores a pytree (the train state) by step number.

    With `create=False` a missing folder is not created (for restoring only). Saves are written
    before `save` returns, so that a failure is reported at the step that caused it.
    """

    def __init__(self, directory, keep: int = 3, create: bool = True):
        self.directory = pathlib.Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=create, enable_async_checkpointing=False)
        try:
            self._manager = ocp.CheckpointManager(self.directory, options=options,
                                                  item_handlers=ocp.StandardCheckpointHandler())
        except OSError as e:
            raise CheckpointError(f"cannot use the checkpoint folder {self.directory}: {e.strerror or e}") from None

    def steps(self) -> list[int]:
        """The steps of the complete checkpoints, oldest first (whole or not)."""
        return sorted(self._manager.all_steps())

    def latest_step(self) -> Optional[int]:
        """The step of the newest complete checkpoint, or None."""
        return self._manager.latest_step()

    def saved_shape(self, field, step: Optional[int] = None) -> tuple:
        """The shape of the top-level array `field` of the train state (or of the nested array at the
        path `field`, a tuple of keys) in checkpoint `step` (default: the newest), read from its
        metadata; `CheckpointError` when there is none."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory} (found none; train first with train.py "
                                  f"and the same exp_dir)")
        try:
            tree = self._manager.item_metadata(step).tree
            for key in (field,) if isinstance(field, str) else field:
                tree = tree[key]
            return tuple(tree.shape)
        except (KeyError, TypeError, AttributeError):
            raise CheckpointError(f"checkpoint {self.directory / str(step)} holds no {'/'.join(field) if not isinstance(field, str) else field}; was it trained with "
                                  f"another config?") from None

    def save(self, step: int, state) -> None:
        """Writes `state` (a train state: its `stored_fields`) as checkpoint `step`, with its integrity record.

        Raises `CheckpointError` (one line: the folder and the cause) when it cannot be written;
        then no folder of this step is left, and the older checkpoints are untouched.
        """
        needed = nbytes(state)
        try:
            check_free(self.directory, needed)
        except OSError as e:
            raise self._save_error(step, e, needed) from None
        try:
            with quiet():
                self._manager.save(step, args=ocp.args.StandardSave(stored_fields(state)), force=True)
            if jax.process_index() == 0:
                write_integrity(self.directory / str(step))
        except Exception as e:  # Orbax wraps the OSError of the write in its own exceptions
            self._remove_partial(step)
            raise self._save_error(step, e, needed) from None

    def _save_error(self, step: int, e: BaseException, needed: int) -> CheckpointError:
        why = write_failure(e, needed) or _root_cause(e)
        kept = self.steps() if self.directory.is_dir() else []
        return CheckpointError(f"cannot save checkpoint {step} in {self.directory}: {why}; "
                               f"{f'checkpoints {kept} are intact' if kept else 'no checkpoint was kept'}")

    def _remove_partial(self, step: int) -> None:
        """Removes what a failed save of `step` left: Orbax's temporary folder, or the step's folder."""
        if jax.process_index() != 0 or not self.directory.is_dir():
            return
        for path in self.directory.iterdir():
            if path.name == str(step) or path.name.startswith(f"{step}.orbax-checkpoint-tmp"):
                shutil.rmtree(path, ignore_errors=True)
        self._manager.reload()

    def _check(self, step: int) -> None:
        """Raises `Damaged` when checkpoint `step`'s files are not whole."""
        try:
            problem = check_integrity(self.directory / str(step))
        except FileNotFoundError:
            return  # no record: the restore itself is the check
        if problem is not None:
            raise Damaged(problem)

    def _read(self, step: int, abstract, partial: bool):
        """Checkpoint `step`'s arrays into `abstract`: all of them, or with `partial` only the
        top-level fields `abstract` names (the rest of the files is never read)."""
        if not partial:
            return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        restore_args = ocp.checkpoint_utils.construct_restore_args(abstract)
        with ocp.PyTreeCheckpointer() as reader:
            return reader.restore(self.directory / str(step) / _ITEM, args=ocp.args.PyTreeRestore(
                abstract, restore_args=restore_args, partial_restore=True))

    def _restore_step(self, step: int, abstract, partial: bool = False):
        """Checkpoint `step` restored into `abstract` (with `partial`, only its fields): `Damaged` when
        its files cannot be read, `CheckpointError` saying so when it holds other arrays than the
        model's, and naming the exception otherwise."""
        self._check(step)
        verified = (self.directory / str(step) / INTEGRITY).is_file()
        try:
            tree = self._manager.item_metadata(step).tree
            if partial:
                missing = sorted(set(abstract) - set(tree))
                if missing:
                    raise self._mismatch(step, f"it holds no {', '.join(missing)}")
                tree = {name: tree[name] for name in abstract}
            saved = _shapes(tree)
        except CheckpointError:
            raise
        except Exception as e:  # damaged metadata: Orbax and TensorStore raise many kinds
            raise (self._failure(step, e) if verified else Damaged(_root_cause(e))) from None
        if saved != _shapes(abstract):
            raise self._mismatch(step, f"it holds {len(saved)} arrays, the model {len(_shapes(abstract))}, "
                                       f"of other shapes")
        with quiet():
            try:
                return self._read(step, abstract, partial)
            except Exception as e:
                failure = e
                # TensorStore's reads still in flight finish (and complain) on their own threads.
                gc.collect()
                time.sleep(_DRAIN_SECONDS)
        if _is_tree_mismatch(failure):
            raise self._mismatch(step, failure)
        if not verified and _is_read_error(failure):  # files that passed their record are whole, whatever failed
            raise Damaged(_root_cause(failure))
        raise self._failure(step, failure)

    def _mismatch(self, step: int, why) -> CheckpointError:
        why = _root_cause(why) if isinstance(why, BaseException) else why
        return CheckpointError(f"checkpoint {self.directory / str(step)} does not fit this config's model ({why}); "
                               f"was it trained with another config?")

    def _failure(self, step: int, e: BaseException) -> CheckpointError:
        """A restore of checkpoint `step` that failed with `e` for another reason than the model."""
        inner = _innermost(e)
        why = f"{type(inner).__name__}: {_root_cause(e)}" if str(inner).strip() else type(inner).__name__
        return CheckpointError(f"cannot restore checkpoint {self.directory / str(step)}: {why}")

    def _move_aside(self, step: int) -> pathlib.Path:
        """Renames checkpoint `step` to `corrupt-STEP` (or `corrupt-STEP.K` if taken); returns the new path."""
        aside, k = self.directory / f"corrupt-{step}", 1
        while aside.exists():
            aside, k = self.directory / f"corrupt-{step}.{k}", k + 1
        if jax.process_index() == 0:
            (self.directory / str(step)).rename(aside)
        return aside

    def restore(self, target, step: Optional[int] = None, log: Callable[[str], None] = print, partial: bool = False):
        """Restores checkpoint `step` into the structure, shapes and shardings of `target` (a train state).

        With `partial`, `target` is a dict of some of the state's top-level fields (what inference
        needs: "step", "params"); only those are read, so that the rest (the optimizer's state) may
        have any structure, or none this code could build. Without `step`, the newest checkpoint whose files are whole: each newer damaged one is
        moved aside to `corrupt-STEP/` with a line to `log`. An explicit `step` that is damaged
        raises `CheckpointError` naming it and the whole ones.
        """
        steps = self.steps()
        if not steps or (step is not None and step not in steps):
            hint = (f"found steps: {steps}; pick one of them" if steps
                    else "found none; train first with train.py and the same exp_dir")
            raise CheckpointError(f"no checkpoint {'' if step is None else f'for step {step} '}in {self.directory} "
                                  f"({hint})")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, stored_fields(target))
        if step is not None:
            try:
                restored = self._restore_step(step, abstract, partial)
            except Damaged as e:
                raise CheckpointError(f"checkpoint {self.directory / str(step)} is damaged ({e}); "
                                      f"whole checkpoints: steps {self._whole_steps(exclude=step)}") from None
        else:
            for candidate in reversed(steps):
                try:
                    restored = self._restore_step(candidate, abstract, partial)
                    break
                except Damaged as e:
                    aside = self._move_aside(candidate)
                    log(f"checkpoint {candidate} is damaged ({e}); moved it to {aside}")
            else:
                self._manager.reload()
                raise CheckpointError(f"no checkpoint in {self.directory} is whole; the damaged ones were moved to "
                                      f"corrupt-STEP/ folders beside them")
            self._manager.reload()
        # Each field takes the target's own types (FrozenDict, optax states) with the restored arrays.
        like = lambda template, value: jax.tree.unflatten(jax.tree.structure(template), jax.tree.leaves(value))
        if not dataclasses.is_dataclass(target):
            return like(target, restored)
        return target.replace(**{name: like(getattr(target, name), value) for name, value in restored.items()})

    def _whole_steps(self, exclude: int) -> list[int]:
        whole = []
        for s in self.steps():
            try:
                if s != exclude:
                    self._check(s)
                    whole.append(s)
            except Damaged:
                pass
        return whole

    def close(self) -> None:
        self._manager.close()
