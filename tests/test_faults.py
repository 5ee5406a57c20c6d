"""Faults a long run meets: damaged checkpoints, a full disk, another config, two runs at once, stops.

Each is tried the way it happens, and must leave every good checkpoint usable and say what
happened in at most three lines.
"""

import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from helpers import ROOT, assert_one_line_error, interrupt_after, read_stderr_until, setup_training, tiny_config
from mipnerf import datasets
from mipnerf.commands import run_config, run_lock, train
from mipnerf.errors import CheckpointError, ConfigError
from mipnerf.render import rendering
from mipnerf.store import checkpoints, integrity
from mipnerf.store.checkpoints import Checkpointer
from mipnerf.training import distributed

EVERY, STEPS = 10, 30
# A damaged checkpoint without an integrity record leaves Orbax's reads in flight; Python
# collects them later, in whichever test runs then.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def config(scene, exp_dir, **overrides):
    return tiny_config(scene, exp_dir, checkpoint_every=EVERY, **dict(dict(max_steps=STEPS), **overrides))


def quiet(message):
    pass


def printed_lines(result) -> list[str]:
    """What a finished command printed, line by line, without its progress bars."""
    lines = [line.split("\r")[-1] for line in (result.stdout + result.stderr).split("\n")]
    return [line for line in lines if line.strip() and not re.search(r"\|\s*\d+/\d+ \[", line)]


def run(script, *flags, **kwargs):
    return subprocess.run([sys.executable, script, *flags], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          **kwargs)


@pytest.fixture(scope="module")
def straight(tiny_scene, tmp_path_factory):
    """The parameters of an uninterrupted run to STEPS."""
    return train.train(config(tiny_scene, tmp_path_factory.mktemp("straight")), log=quiet).params


def largest_data_file(step_dir):
    return max((p for p in (step_dir / "default").rglob("*") if p.is_file() and p.parent.name == "d"),
               key=lambda p: p.stat().st_size)


def truncate(path):
    os.truncate(path, path.stat().st_size // 2)


@pytest.mark.parametrize("damage,record", [(truncate, True), (os.remove, True), (truncate, False)],
                         ids=["truncated", "deleted", "truncated-without-record"])
def test_resume_skips_a_damaged_checkpoint_and_moves_it_aside(tiny_scene, tmp_path, monkeypatch, straight, damage,
                                                             record):
    with monkeypatch.context() as m, pytest.raises(train.Interrupted):  # stopped at step 20 of 30
        interrupt_after(m, 2 * EVERY)
        train.train(config(tiny_scene, tmp_path), log=quiet)
    newest = tmp_path / "checkpoints" / str(2 * EVERY)
    damage(largest_data_file(newest))
    if not record:  # a checkpoint written before integrity records, or cut off just before its record
        (newest / integrity.INTEGRITY).unlink()
    messages = []
    resumed = train.train(config(tiny_scene, tmp_path), log=messages.append)
    assert any(f"checkpoint {2 * EVERY} is damaged" in m and "corrupt-20" in m for m in messages), messages
    assert any(f"resuming from step {EVERY}" in m for m in messages), messages
    assert len(messages) == 2
    assert (tmp_path / "checkpoints" / f"corrupt-{2 * EVERY}").is_dir()
    assert Checkpointer(tmp_path / "checkpoints").steps() == [EVERY, 2 * EVERY, STEPS]  # 20 saved anew
    assert int(resumed.step) == STEPS
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_an_explicit_damaged_step_is_named_with_the_whole_ones(tiny_scene, tmp_path):
    train.train(config(tiny_scene, tmp_path), log=quiet)
    damaged = tmp_path / "checkpoints" / str(2 * EVERY)
    (damaged / "_CHECKPOINT_METADATA").write_text("{}")  # same size or not, the checksum tells
    state = setup_training(config(tiny_scene, tmp_path)).state
    with pytest.raises(CheckpointError, match=rf"{damaged} is damaged \(file _CHECKPOINT_METADATA .*\); "
                                              rf"whole checkpoints: steps \[{EVERY}, {STEPS}\]"):
        Checkpointer(tmp_path / "checkpoints").restore(state, 2 * EVERY)
    assert damaged.is_dir()  # an explicit step is reported, not moved


def test_a_whole_checkpoint_that_does_not_restore_is_a_mismatch_and_stays(tiny_scene, tmp_path, monkeypatch):
    train.train(config(tiny_scene, tmp_path, max_steps=EVERY), log=quiet)
    state = setup_training(config(tiny_scene, tmp_path)).state

    def other_tree(self, step, *args, **kwargs):
        raise ValueError("User-provided restore item and on-disk value metadata tree structures do not match")

    monkeypatch.setattr(ocp.CheckpointManager, "restore", other_tree)
    with pytest.raises(CheckpointError, match=rf"checkpoint {tmp_path / 'checkpoints' / str(EVERY)} does not fit this "
                                              rf"config's model \(User-provided .*\); was it trained with another"):
        Checkpointer(tmp_path / "checkpoints").restore(state)
    assert Checkpointer(tmp_path / "checkpoints").steps() == [EVERY]  # not moved aside


@pytest.fixture(scope="module")
def two_step_run(tiny_scene, tmp_path_factory):
    """A run of two steps of `tiny_config`'s model, with its checkpoint of step 2."""
    exp_dir = tmp_path_factory.mktemp("two_steps")
    train.train(tiny_config(tiny_scene, exp_dir, max_steps=2, checkpoint_every=2), log=quiet)
    return exp_dir


def test_a_real_checkpoint_of_another_width_does_not_fit(tiny_scene, two_step_run):
    wider = tiny_config(tiny_scene, two_step_run, nerf_width=96)
    with pytest.raises(CheckpointError) as caught:
        rendering.load_renderer(wider, log=quiet)
    message = str(caught.value)
    assert message.startswith(f"checkpoint {two_step_run / 'checkpoints' / '2'} does not fit this config's model ")
    assert "was it trained with another config?" in message and "\n" not in message
    assert Checkpointer(two_step_run / "checkpoints").steps() == [2]


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("something else")], ids=["memory", "other"])
def test_another_restore_failure_says_what_it_is(tiny_scene, two_step_run, monkeypatch, error):
    def failing(self, step, *args, **kwargs):
        raise error

    monkeypatch.setattr(ocp.PyTreeCheckpointer, "restore", failing)  # rendering reads the parameters alone
    with pytest.raises(CheckpointError) as caught:
        rendering.load_renderer(tiny_config(tiny_scene, two_step_run), log=quiet)
    message = str(caught.value)
    assert message == f"cannot restore checkpoint {two_step_run / 'checkpoints' / '2'}: " + \
        (f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
    assert "does not fit" not in message
    assert Checkpointer(two_step_run / "checkpoints").steps() == [2]  # not moved aside


@pytest.mark.parametrize("target,words", [
    ({"a": jnp.zeros(3), "x": {"c": jnp.zeros(2)}}, "User-provided restore item"),
    ({"x": np.zeros(3, np.float32), "b": {"c": np.zeros(2, np.float32)}}, "Structure mismatch"),
    ({"a": jnp.zeros(2), "b": {"c": jnp.zeros(3)}}, "Requested shape")], ids=["renamed", "renamed-numpy", "reshaped"])
def test_the_installed_orbax_words_another_tree_as_the_checkpointer_expects(tmp_path, monkeypatch, target, words):
    # Past the checkpointer's own comparison of shapes and dtypes, Orbax's message alone tells another
    # model from other failures: an Orbax that words it otherwise fails here.
    ckpt = Checkpointer(tmp_path / "checkpoints")
    ckpt.save(1, {"a": jnp.zeros(3), "b": {"c": jnp.zeros(2)}})
    monkeypatch.setattr(checkpoints, "_shapes", lambda tree: [])
    with pytest.raises(CheckpointError, match=rf"checkpoint {tmp_path / 'checkpoints' / '1'} does not fit this "
                                              rf"config's model \({words}.*\); was it"):
        ckpt.restore(target)


def test_integrity_check_finds_every_kind_of_damage(tmp_path):
    folder = tmp_path / "7"
    (folder / "d").mkdir(parents=True)
    (folder / "d" / "a").write_bytes(b"x" * 100)
    (folder / "b").write_bytes(b"y" * 10)
    integrity.write_integrity(folder)
    assert integrity.check_integrity(folder) is None
    (folder / "d" / "a").write_bytes(b"x" * 99 + b"z")
    assert "d/a does not match its checksum" in integrity.check_integrity(folder)
    (folder / "d" / "a").write_bytes(b"x" * 50)
    assert "d/a has 50 of its 100 bytes" in integrity.check_integrity(folder)
    (folder / "d" / "a").unlink()
    assert "d/a is missing" in integrity.check_integrity(folder)
    (folder / integrity.INTEGRITY).write_text("{")
    assert "cannot be read" in integrity.check_integrity(folder)
    (folder / integrity.INTEGRITY).unlink()
    with pytest.raises(FileNotFoundError):
        integrity.check_integrity(folder)


# Replaces CheckpointManager.save in a child process: the save of FAIL_STEP leaves a partial
# temporary folder, as a real write does, then fails with ENOSPC.
ENOSPC_DRIVER = """
import errno, os, runpy, sys
import orbax.checkpoint as ocp
save = ocp.CheckpointManager.save
def failing(self, step, *args, **kwargs):
    if step == int(os.environ["FAIL_STEP"]):
        partial = self.directory / f"{step}.orbax-checkpoint-tmp-1234"
        partial.mkdir()
        (partial / "half").write_bytes(b"x" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(partial / "half"))
    return save(self, step, *args, **kwargs)
ocp.CheckpointManager.save = failing
sys.argv = ["train.py"] + sys.argv[1:]
runpy.run_path("train.py", run_name="__main__")
"""


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so_in_one_line(tiny_scene, tmp_path):
    flags = ["--config=tests/helpers.py", f"--config.data_dir={tiny_scene}", f"--config.exp_dir={tmp_path}",
             f"--config.max_steps={STEPS}", f"--config.checkpoint_every={EVERY}"]
    result = subprocess.run([sys.executable, "-c", ENOSPC_DRIVER, *flags], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, FAIL_STEP=str(2 * EVERY), PYTHONPATH=str(ROOT)))
    assert_one_line_error(result, f"cannot save checkpoint {2 * EVERY} in {tmp_path / 'checkpoints'}",
                          "no space left on the device (the checkpoint needs about", f"checkpoints [{EVERY}] are intact")
    assert len(printed_lines(result)) == 1, printed_lines(result)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [str(EVERY)]
    state = setup_training(config(tiny_scene, tmp_path)).state
    assert int(Checkpointer(tmp_path / "checkpoints").restore(state).step) == EVERY


def test_a_save_that_fails_midway_leaves_no_folder(tiny_scene, tmp_path, monkeypatch):
    def fail_after_writing(self, step, *args, **kwargs):
        (self.directory / str(step)).mkdir()  # as if Orbax had finished but the record could not be written
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(self.directory / str(step)))

    train.train(config(tiny_scene, tmp_path, max_steps=EVERY), log=quiet)
    monkeypatch.setattr(ocp.CheckpointManager, "save", fail_after_writing)
    with pytest.raises(CheckpointError, match=rf"cannot save checkpoint {2 * EVERY} .*Permission denied; "
                                              rf"checkpoints \[{EVERY}\] are intact"):
        train.train(config(tiny_scene, tmp_path), log=quiet)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [str(EVERY)]


def test_too_little_free_space_fails_before_writing(tmp_path, monkeypatch):
    ckpt = Checkpointer(tmp_path / "checkpoints")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1000))
    with pytest.raises(CheckpointError, match=r"no space left .*needs about 0\.4 MB, 0\.0 MB free"):
        ckpt.save(1, {"w": np.zeros(100_000, np.float32)})
    assert list((tmp_path / "checkpoints").iterdir()) == []


@pytest.fixture(scope="module")
def narrow_run(tiny_scene, tmp_path_factory):
    """A run trained by train.py with a model width that no config file has."""
    exp_dir = tmp_path_factory.mktemp("narrow")
    result = run("train.py", "--config=tests/helpers.py", f"--config.data_dir={tiny_scene}", f"--config.exp_dir={exp_dir}",
                 "--config.nerf_width=48", f"--config.max_steps={EVERY}", f"--config.checkpoint_every={EVERY}",
                 "--config.grad_max_norm=0")  # eval's default config clips: the optimizer state must not care
    assert result.returncode == 0, result.stderr
    return exp_dir


def test_eval_takes_the_model_from_the_run(narrow_run):
    result = run("eval.py", f"--config.exp_dir={narrow_run}", "--config.render_chunk=512")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((narrow_run / "eval" / "metrics.json").read_text())
    assert metrics["step"] == EVERY and len(metrics["images"]) == 3


@pytest.mark.parametrize("script", ["eval.py", "render.py", "train.py"])
def test_a_conflicting_model_flag_is_one_line(tiny_scene, narrow_run, script):
    result = run(script, "--config=tests/helpers.py", f"--config.data_dir={tiny_scene}", f"--config.exp_dir={narrow_run}",
                 "--config.nerf_width=64")
    assert_one_line_error(result, "config.nerf_width=64", "nerf_width=48", str(narrow_run / "config.json"))
    assert len(printed_lines(result)) == 1, printed_lines(result)
    assert json.loads((narrow_run / "config.json").read_text())["nerf_width"] == 48


def test_explicit_scene_fields_win_and_model_fields_follow_the_run(tiny_scene, tmp_path):
    trained = config(tiny_scene, tmp_path, nerf_width=48, factor=1)
    run_config.save(trained, tmp_path)
    given = config("/moved/scene", tmp_path, factor=2)
    merged = run_config.for_restore(given, explicit={"data_dir", "exp_dir"})
    assert merged.nerf_width == 48 and merged.factor == 1 and merged.data_dir == "/moved/scene"
    assert merged.num_prop_samples == tuple(trained.num_prop_samples)
    with pytest.raises(ConfigError, match=r"config\.nerf_width=64 differs .* nerf_width=48"):
        run_config.for_restore(config(tiny_scene, tmp_path, nerf_width=64), explicit={"nerf_width"})


class ReadFields:
    """A config that records the name of every field read from it, as an attribute or an item."""

    def __init__(self, config):
        self.__dict__.update(_config=config, read=set())

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self.read.add(name)
        return self._config[name]

    __getitem__ = __getattr__

    def __contains__(self, name):
        return name in self._config


def fields_read_by_the_model(config, split) -> set[str]:
    """The fields of `config` read while building the model, its train state, a training step and a
    render of `split`'s first camera (traced, not compiled)."""
    from mipnerf.cameras import camera
    from mipnerf.model import mipnerf360
    from mipnerf.render import rendering
    from mipnerf.training import train_images, update

    recorded, mesh, count = ReadFields(config), distributed.make_mesh(), len(split.camtoworlds)
    model, made = mipnerf360.build_model(recorded, count), {}

    def create():
        state, made["tx"] = update.create_train_state(recorded, model, mesh, count)
        return state

    state = jax.eval_shape(create)
    images = train_images.put_train_images([split], recorded, mesh)
    jax.eval_shape(update.make_train_step(recorded, model, made["tx"], mesh), state, images)
    render, lens = rendering.make_render_fn(recorded, model), camera.Lens.of(split.intrinsics)
    cameras = jax.tree.map(lambda x: x[0], datasets.split_cameras(split, recorded))
    jax.eval_shape(lambda p, c, px: render(p, c, px, lens), state.params, cameras, np.arange(8, dtype=np.int32))
    return recorded.read


# Fields the model's code reads that do not shape the parameters or the sampling: how it computes
# (a run may change them), and how it is optimised.
HOW_NOT_WHAT = {"precision", "remat"}
OPTIMISATION = {"seed", "batch_size", "grad_accum", "max_steps", "lr_init", "lr_final", "lr_delay_steps",
                "lr_delay_mult", "adam_beta1", "adam_beta2", "adam_eps", "grad_max_norm", "data_loss",
                "charbonnier_padding", "multiscale_loss", "interlevel_loss_mult", "distortion_loss_mult",
                "grid_decay_mult", "pose_lr_init", "pose_lr_final", "pose_warmup_steps", "pose_decay",
                "interlevel_loss", "interlevel_blurs", "distortion_distance", "distortion_power", "distortion_premult"}


def test_every_field_the_model_reads_travels_with_the_run(tiny_scene, tmp_path):
    """Every field read while the model, its parameters, a step and a render are made is a model
    field or a known other; and every model field is read by one of the two kinds of field."""
    read = set()
    for field in ("mlp", "grid"):
        plain = config(tiny_scene, tmp_path, field=field, pose_refine=True, appearance_dim=4, appearance_affine=True)
        read |= fields_read_by_the_model(plain, datasets.load_split(plain, "train"))
    model = set(run_config.MODEL_FIELDS)
    assert read - HOW_NOT_WHAT - OPTIMISATION <= model, read - HOW_NOT_WHAT - OPTIMISATION - model
    assert model <= read, model - read


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_lock(exp_dir, **holder):
    exp_dir.mkdir(parents=True, exist_ok=True)
    (exp_dir / run_lock.LOCK_FILE).write_text(json.dumps(dict(host=socket.gethostname(), started="then", **holder)))


def test_a_second_train_on_a_locked_exp_dir_stops_at_start(tmp_path):
    write_lock(tmp_path, pid=os.getpid(), ticks=run_lock._start_ticks(os.getpid()))
    # A scene that does not exist: the lock is what stops it, before any data is read.
    result = run("train.py", "--config=configs/blender.py", f"--config.data_dir={tmp_path / 'nowhere'}",
                 f"--config.exp_dir={tmp_path}")
    assert_one_line_error(result, f"{tmp_path} is in use by train.py", f"process {os.getpid()}")
    assert len(printed_lines(result)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [run_lock.LOCK_FILE]


@pytest.mark.parametrize("holder", ["dead", "reused", "cut short"])
def test_a_stale_lock_is_taken_over_with_a_note(tmp_path, holder):
    if holder == "cut short":
        tmp_path.joinpath(run_lock.LOCK_FILE).write_text('{"pid": 12')
    elif holder == "dead":
        write_lock(tmp_path, pid=dead_pid(), ticks=None)
    else:  # a live pid that now belongs to another process than the one that wrote the lock
        write_lock(tmp_path, pid=os.getppid(), ticks=-1)
    notes = []
    with run_lock.hold(tmp_path, notes.append):
        assert json.loads((tmp_path / run_lock.LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (tmp_path / run_lock.LOCK_FILE).exists()
    assert len(notes) == (0 if holder == "cut short" else 1)
    assert all("took over the lock" in n and "no longer running" in n for n in notes)


def test_a_lock_from_another_host_is_reported_with_how_to_clear_it(tmp_path):
    (tmp_path / run_lock.LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "then"}))
    with pytest.raises(run_lock.RunLocked, match=rf"process 1 on elsewhere .* delete {tmp_path / run_lock.LOCK_FILE}"):
        with run_lock.hold(tmp_path, quiet):
            pass


@pytest.mark.parametrize("stop,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_saves_and_exits_128_plus_its_number(tiny_scene, tmp_path, stop, code):
    """A real train.py, stopped in its loop by Ctrl-C (SIGINT) or a scheduler's SIGTERM."""
    flags = ["--config=tests/helpers.py", f"--config.data_dir={tiny_scene}", f"--config.exp_dir={tmp_path}",
             "--config.max_steps=100000", "--config.checkpoint_every=100000"]
    child = subprocess.Popen([sys.executable, "train.py", *flags], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    read_stderr_until(child, lambda seen: "train:" in seen and re.search(r"\| *[1-9]\d*/100000", seen))
    child.send_signal(stop)
    rest = child.stderr.read()
    assert child.wait(timeout=120) == code
    saved = Checkpointer(tmp_path / "checkpoints").steps()
    assert len(saved) == 1 and f"{stop.name}: saved checkpoint at step {saved[0]}" in rest
    assert not (tmp_path / run_lock.LOCK_FILE).exists()


def test_a_checkpoint_from_before_the_pose_fields_restores(tmp_path):
    """Checkpoints written before the train state had its optional pose fields (all four fields,
    by name, as Orbax stores a dataclass) restore into today's state, whose pose fields are None."""
    import flax

    from mipnerf.model import mipnerf360
    from mipnerf.training import update

    @flax.struct.dataclass
    class EarlierState:
        step: jax.Array
        params: flax.core.FrozenDict
        opt_state: object
        nonfinite_step: jax.Array

    c = tiny_config("", tmp_path)
    mesh = distributed.make_mesh()
    state, _ = update.create_train_state(c, mipnerf360.build_model(c), mesh)
    state = state.replace(step=state.step + 7)
    ckpt = Checkpointer(tmp_path / "checkpoints")
    ckpt.save(7, EarlierState(state.step, state.params, state.opt_state, state.nonfinite_step))
    assert sorted(ckpt._manager.item_metadata(7).tree) == ["nonfinite_step", "opt_state", "params", "step"]
    fresh, _ = update.create_train_state(c, mipnerf360.build_model(c), mesh)
    restored = ckpt.restore(fresh)
    ckpt.close()
    assert int(restored.step) == 7 and restored.poses is None and restored.pose_opt_state is None
    for a, b in zip(jax.tree.leaves(restored.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_run_recorded_before_a_model_field_existed_restores_and_resumes_with_the_old_behaviour(tiny_scene, tmp_path):
    trained = config(tiny_scene, tmp_path)
    run_config.save(trained, tmp_path)
    recorded = json.loads((tmp_path / "config.json").read_text())
    for field in run_config.BEFORE_THE_FIELD:
        del recorded[field]
        assert trained[field] == run_config.BEFORE_THE_FIELD[field]  # the defaults keep the behaviour before
    (tmp_path / "config.json").write_text(json.dumps(recorded))
    newer = config(tiny_scene, tmp_path, density_activation="exp", view_skip_layer=2)  # a config file of today
    merged = run_config.for_restore(newer, explicit={"data_dir", "exp_dir"})
    assert merged.density_activation == "softplus" and merged.view_skip_layer == 0
    with pytest.raises(ConfigError, match=r"config\.view_skip_layer=2 differs .* view_skip_layer=0"):
        run_config.check_resume(newer)
