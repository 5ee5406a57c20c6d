"""The training loop behind train.py: data on the device, the jitted step, logs and checkpoints."""

import contextlib
import json
import pathlib
import sys
import time
from typing import Any, Iterable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from tensorboardX import SummaryWriter

from mipnerf import datasets, metrics
from mipnerf.cameras import camera
from mipnerf.commands import run_config, run_lock
from mipnerf.commands.config_checks import check_config
from mipnerf.datasets import scene_frame
from mipnerf.errors import ConfigError, Interrupted, MipNerfError
from mipnerf.model import mipnerf360
from mipnerf.render import rendering, video
from mipnerf.store import stops
from mipnerf.store.checkpoints import Checkpointer, checkpoint_dir
from mipnerf.training import distributed, pose_export, train_images, update


class NonFiniteLoss(MipNerfError):
    """The loss stopped being finite; the run stops before anything bad is saved."""


def save_transform(transform, exp_dir: pathlib.Path, applied=None) -> None:
    """Writes `transform.json`: the 4x4 map from the capture's world frame to the model's, unless it is None;
    with `applied` (nerfstudio's applied_transform, [4, 4]), that too and the map from the frame before it."""
    if transform is None:
        return
    record = {"world_to_model": transform.tolist(),
              "scale": scene_frame.similarity_scale(transform),
              "about": "4x4 similarity taking homogeneous points of the capture's world frame (COLMAP's, "
                       "poses_bounds.npy's or transforms.json's) to the frame of the model, cameras and renders"}
    if applied is not None:
        record.update(applied_transform=applied.tolist(), original_to_model=(transform @ applied).tolist(),
                      about_applied="applied_transform: transforms.json's map from the frame its poses were made in "
                                    "(COLMAP's, for ns-process-data) to its world frame, already in its poses; "
                                    "original_to_model = world_to_model @ applied_transform")
    (exp_dir / "transform.json").write_text(json.dumps(record, indent=2))


def params_finite(params) -> bool:
    return bool(jax.device_get(jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)]))))


def train(config, log=print, explicit: Iterable[str] = ()) -> update.TrainState:
    """Trains to `config.max_steps`, resuming from the newest whole checkpoint in `config.exp_dir`.

    Holds `exp_dir/train.lock` while it runs. Returns the final train state. With
    `config.pose_refine`, each checkpoint also writes the refined training cameras (`pose_export`). Raises `MipNerfError`
    (with a one-line message) on bad input, a model field that differs from the run being
    resumed, or a checkpoint that cannot be saved; `NonFiniteLoss` if the loss stops being
    finite; `Interrupted` (holding the saved state) after a checkpoint on SIGTERM or Ctrl-C.
    `explicit`: the fields named on the command line, refused where the config leaves them unused.
    """
    check_config(config, explicit)
    primary = distributed.is_primary()
    log = log if primary else (lambda message: None)
    with run_lock.hold(config.exp_dir, log) if primary else contextlib.nullcontext():
        with contextlib.closing(Checkpointer(checkpoint_dir(config.exp_dir), keep=config.keep_checkpoints)) as ckpt, \
                contextlib.ExitStack() as cleanup:
            return _train(config, log, primary, ckpt, cleanup)


class _Run(NamedTuple):
    """What the loop of a run works with, made once: the device mesh, the training images on the
    devices, the model and its optimizer, the training cameras (for their refined poses), the
    viewer (or None) and the logged validation view (or None)."""

    mesh: Any
    data: train_images.TrainImages
    model: Any
    tx: Any
    train_cameras: pose_export.TrainCameras
    viewer: Any
    val_view: Optional["ValView"]


def _check_run(config, ckpt: Checkpointer, mesh) -> None:
    """Raises `ConfigError` for a run this config cannot make or resume."""
    update.check_batch_divides(config.batch_size, mesh, config.grad_accum)
    if ckpt.steps():
        run_config.check_resume(config)
    if config.pose_refine and jax.process_count() > 1:
        raise ConfigError("config.pose_refine=True: expected a single-process run (pose refinement indexes the "
                          "cameras of one process's training images)")
    if (config.appearance_dim or config.appearance_affine) and jax.process_count() > 1:
        raise ConfigError("config.appearance_dim / appearance_affine: expected a single-process run (the "
                          "appearance tables are indexed by one process's training images)")


def _set_up(config, log, primary: bool, ckpt: Checkpointer, cleanup: contextlib.ExitStack):
    """The run's `_Run` and its train state, restored from the newest whole checkpoint when there is one."""
    exp_dir = pathlib.Path(config.exp_dir)
    mesh = distributed.make_mesh()
    _check_run(config, ckpt, mesh)
    # Each process of a multi-host run loads only its share of the training images; once they are on
    # the devices, the host's copy is dropped.
    train_scales = datasets.load_scales(config, "train", share=(jax.process_index(), jax.process_count()))
    data = train_images.put_train_images(train_scales, config, mesh)
    train_transform, applied = train_scales[0].transform, train_scales[0].applied_transform
    train_cameras = pose_export.train_cameras(train_scales)
    model = mipnerf360.build_model(config, len(train_cameras.files))
    viewer = start_viewer(config, train_scales[0], model, mesh, log) if primary else None
    if viewer is not None:
        cleanup.callback(viewer.close)
    del train_scales
    val_view = None
    if config.val_every and jax.process_count() > 1:
        log("validation views are off in multi-host runs; evaluate checkpoints with eval.py")
    elif config.val_every:
        val_view = first_val_view(config)

    state, tx = update.create_train_state(config, model, mesh, len(train_cameras.files))
    if primary:
        run_config.save(config, exp_dir)
        save_transform(train_transform, exp_dir, applied)
    if ckpt.steps():
        state = ckpt.restore(state, log=log)
        log(f"resuming from step {int(state.step)} ({ckpt.directory})")
    return _Run(mesh, data, model, tx, train_cameras, viewer, val_view), state


def _train(config, log, primary: bool, ckpt: Checkpointer, cleanup: contextlib.ExitStack) -> update.TrainState:
    run, state = _set_up(config, log, primary, ckpt, cleanup)
    start = int(state.step)
    if start >= config.max_steps:
        log(f"already trained to step {start} (max_steps={config.max_steps}); nothing to do")
        return state
    writer = SummaryWriter(str(pathlib.Path(config.exp_dir) / "tb")) if primary else None
    stop = stops.StopRequests()
    try:
        with stop.installed(), tqdm.tqdm(initial=start, total=config.max_steps, desc="train", unit="step",
                                             disable=not primary) as bar:
            state = _loop(config, run, state, ckpt, writer, bar, stop, primary)
    finally:
        if writer is not None:
            writer.close()
    if stop.requested is not None:
        raise Interrupted(f"{stop.name}: saved checkpoint at step {int(state.step)}; run the same command to resume",
                          stop.requested, state)
    return state


def _loop(config, run: _Run, state, ckpt: Checkpointer, writer, bar, stop: stops.StopRequests, primary: bool):
    """Steps from `state` to max_steps (or a stop request), logging, checkpointing and showing the
    validation view on the way; returns the last state."""
    train_step = update.make_train_step(config, run.model, run.tx, run.mesh)
    render_fn = rendering.make_render_fn(config, run.model) if run.val_view is not None else None
    start = last_saved = int(state.step)
    tic, tic_step = time.time(), start
    in_flight = None  # the previous step's stats: the bar counts finished steps, not dispatched ones
    for step in range(start + 1, config.max_steps + 1):
        if run.viewer is not None:  # before the step, which donates the parameters the viewer may copy
            run.viewer.training_step(state.params, step - 1)
        state, stats = train_step(state, run.data)
        if in_flight is not None:
            jax.block_until_ready(in_flight)
            bar.update(1)
        in_flight = stats
        is_last = step == config.max_steps or stop.requested is not None
        if step % config.log_every == 0 or is_last:
            check_finite(state, last_saved)
            rays_per_s = (step - tic_step) * config.batch_size / (time.time() - tic)
            tic, tic_step = time.time(), step
            log_stats(writer, bar, step, jax.device_get(stats), rays_per_s)
        if step % config.checkpoint_every == 0 or is_last:
            save_checkpoint(config, ckpt, step, state, last_saved, run.train_cameras, primary)
            last_saved = step
        if render_fn is not None and step % config.val_every == 0 and writer is not None:
            log_val_view(writer, step, render_fn, state.params, run.val_view, config, run.mesh)
        if stop.requested is not None:
            break
    if in_flight is not None:
        jax.block_until_ready(in_flight)
        bar.update(1)
    return state


def log_stats(writer, bar, step: int, stats: dict, rays_per_s: float) -> None:
    """Shows a step's stats on the progress bar and writes them to tensorboard (`writer`, or None)."""
    stats = {k: float(v) for k, v in stats.items()}
    bar.set_postfix(loss=f"{stats['loss']:.4f}", psnr=f"{stats['psnr']:.2f}", lr=f"{stats['lr']:.1e}",
                    rays_per_s=f"{rays_per_s:.0f}", refresh=False)
    if writer is not None:
        for k, v in dict(stats, rays_per_s=rays_per_s).items():
            writer.add_scalar(f"train/{k}", v, step)


def save_checkpoint(config, ckpt: Checkpointer, step: int, state, last_saved: int, train_cameras, primary: bool):
    """Saves `state` as checkpoint `step` once it is known to be finite, with the refined cameras
    (`pose_export`) when poses are refined; `NonFiniteLoss` (naming `last_saved`) otherwise."""
    check_finite(state, last_saved)
    if not params_finite(state.params):
        raise NonFiniteLoss(f"parameters became non-finite by step {step}; not saved. "
                            f"The last good checkpoint (step {last_saved}) is intact")
    ckpt.save(step, state)
    if primary and state.poses is not None:
        pose_export.export(config.exp_dir, config, train_cameras, jax.device_get(state.poses))


def start_viewer(config, train: datasets.Split, model, mesh, log):
    """The web viewer of `config.viewer` (None when off, or in a multi-host run), with its address logged."""
    if not config.viewer:
        return None
    if jax.process_count() > 1:
        log("the viewer is off in multi-host runs; view checkpoints with view.py")
        return None
    from mipnerf.viewer import server as viewer_lib  # viser starts threads: import only when serving

    viewer = viewer_lib.Viewer(config, train, rendering.make_render_fn(config, model), mesh, training=True)
    log(f"viewer: {viewer.url}")
    sys.stdout.flush()  # the address is wanted now, not when the buffer fills
    return viewer


def check_finite(state: update.TrainState, last_saved: int) -> None:
    bad = int(state.nonfinite_step)
    if bad >= 0:
        raise NonFiniteLoss(f"the loss became non-finite at step {bad} (that update was skipped); stopping. "
                            f"The last good checkpoint (step {last_saved}) is intact")


class ValView(NamedTuple):
    """The validation view that training logs: its camera (`camera.Cameras` of scalar fields), the
    lens of its split, its colours [H, W, 3] float32 and mask [H, W] (None: every pixel is kept)."""

    cameras: camera.Cameras
    lens: camera.Lens
    colors: np.ndarray
    mask: Optional[np.ndarray]


def first_val_view(config) -> ValView:
    """The first view of the config's validation split, loaded once: the rest of the split is dropped."""
    split = datasets.load_split(config, "val")
    first = split._replace(camtoworlds=split.camtoworlds[:1], intrinsics=split.intrinsics.take(slice(0, 1)))
    cameras = jax.tree.map(lambda x: x[0], datasets.split_cameras(first, config))
    return ValView(cameras, camera.Lens.of(split.intrinsics), split.colors(0), split.mask(0))


def log_val_view(writer, step, render_fn, params, view: ValView, config, mesh) -> None:
    """Renders the validation view and logs it with its depth and PSNR."""
    image = rendering.render_image(render_fn, params, view.cameras, view.lens, config.render_chunk, mesh)
    gt = view.colors
    psnr = metrics.psnr(image.rgb, gt, view.mask)
    depth = video.depth_image(image.depth, image.acc, disparity=config.ray_spacing != "linear")
    writer.add_scalar("val/psnr", psnr, step)
    writer.add_image("val/rgb", np.clip(np.concatenate([image.rgb, gt], axis=1), 0, 1), step, dataformats="HWC")
    writer.add_image("val/depth", depth, step, dataformats="HWC")
