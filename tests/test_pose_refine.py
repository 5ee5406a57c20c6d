"""Pose refinement: zero corrections are the loader's cameras, gradients reach the corrections (and
only the training cameras have any), a perturbed camera is recovered, and the refined cameras go
out as JSON and as a COLMAP model in the capture's own frame."""

import contextlib
import json
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from captures import write_capture
from helpers import tiny_config
from mipnerf import datasets
from mipnerf.cameras import conventions, pose_refine
from mipnerf.commands import evaluate, train
from mipnerf.datasets import colmap, colmap_model, scene_frame
from mipnerf.datasets.builtin import demo
from mipnerf.errors import ConfigError
from mipnerf.model import mipnerf360
from mipnerf.render import pose_fit
from mipnerf.store.checkpoints import Checkpointer, checkpoint_dir
from mipnerf.training import distributed, pose_export, train_images, update


def rotation_error_deg(a: np.ndarray, b: np.ndarray) -> float:
    """The angle between the rotations of camera-to-world matrices a and b, in degrees."""
    d = a[:3, :3].T @ b[:3, :3]
    return float(np.degrees(np.arccos(np.clip((np.trace(d) - 1) / 2, -1, 1))))


def test_rodrigues_is_exact_at_zero_and_matches_the_host():
    np.testing.assert_array_equal(pose_refine.rotation_matrices(np.zeros((2, 3), np.float32)), np.tile(np.eye(3), (2, 1, 1)))
    rng = np.random.default_rng(0)
    corrections = np.concatenate([rng.normal(size=(5, 3)) * [[1e-4], [1e-3], [0.1], [0.5], [2.0]],
                                  rng.normal(size=(5, 3))], axis=1)
    c2w = np.stack([np.eye(4)[:3] + rng.normal(size=(3, 4)) * 0.1 for _ in range(5)])
    got = pose_refine.apply(corrections.astype(np.float32), c2w.astype(np.float32))
    np.testing.assert_allclose(got, pose_refine.apply_numpy(corrections, c2w)[:, :3], atol=2e-6)
    grad = jax.grad(lambda r: pose_refine.rotation_matrices(r).sum())(np.zeros(3, np.float32))
    assert np.all(np.isfinite(grad))


def test_zero_corrections_give_exactly_the_loaders_rays(tiny_scene, tmp_path):
    config = tiny_config(tiny_scene, tmp_path)
    mesh = distributed.make_mesh(jax.devices()[:1])
    images = train_images.put_train_images([datasets.load_split(config, "train")], config, mesh)
    key = jax.random.PRNGKey(3)
    draw = jax.jit(lambda images, poses: train_images.draw_batch(images, key, 512, mesh, poses))
    plain, refined = draw(images, None), draw(images, pose_refine.zeros(len(images.ids)))
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(refined)):
        np.testing.assert_array_equal(a, b)


def step_of(config, num_images=None):
    """A fresh state, the jitted step and the training images of `config` on every device."""
    mesh, model = distributed.make_mesh(), mipnerf360.build_model(config)
    data = train_images.put_train_images([datasets.load_split(config, "train")], config, mesh)
    state, tx = update.create_train_state(config, model, mesh, num_images)
    return state, update.make_train_step(config, model, tx, mesh), data


def test_gradients_reach_the_training_poses_and_the_model_update_is_unchanged(tiny_scene, tmp_path):
    num = len(datasets.load_split(tiny_config(tiny_scene, tmp_path), "train").images)
    off, off_step, data = step_of(tiny_config(tiny_scene, tmp_path, grad_accum=2))
    assert off.poses is None and off.pose_opt_state is None
    refined = {}
    for accum in (1, 2):
        config = tiny_config(tiny_scene, tmp_path, pose_refine=True, pose_warmup_steps=1, grad_accum=accum)
        state, step, _ = step_of(config, num)
        assert state.poses.shape == (num, 6)  # training cameras only: test views have no correction
        frozen, stats = step(state, data)  # step 0 is in the warm-up: the corrections stay at zero
        assert float(stats["pose_lr"]) == 0 and not np.any(frozen.poses)
        if accum == 2:
            # With the corrections at zero the rays, and so the model's update, are those without refinement.
            plain = off_step(off, data)[0]
            for a, b in zip(jax.tree.leaves(plain.params), jax.tree.leaves(frozen.params)):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
        refined[accum] = step(frozen, data)[0]  # donates `frozen`
    moved = np.abs(np.asarray(refined[1].poses)).max(axis=1)
    assert np.all(moved > 0), moved  # every camera's pixels were drawn: each correction got a gradient
    # Micro-batches carry their rays' gradients back in the batch's order: the same step.
    np.testing.assert_allclose(refined[1].poses, refined[2].poses, rtol=1e-3, atol=1e-7)
    # The step leaves no common motion of all cameras in the corrections.
    basis = pose_refine.common_motion_basis(jnp.asarray(datasets.load_split(config, "train").camtoworlds))
    np.testing.assert_allclose(np.asarray(basis).T @ np.asarray(refined[1].poses).reshape(-1), 0, atol=1e-8)


@pytest.fixture(scope="module")
def scene32(tmp_path_factory):
    out = tmp_path_factory.mktemp("scene32")
    demo.render_demo_scene(out, size=32, n_train=12, n_val=1, n_test=1, spp=2)
    return out


TURNED, TURN = 3, np.radians(3.0) * np.array([0.6, 0.8, 0.0])  # the camera that is turned, and by how much


def turned(camtoworlds: np.ndarray, k: int) -> np.ndarray:
    """`camtoworlds` with camera k turned by TURN about its own centre."""
    wrong = np.concatenate([TURN, np.zeros(3)])[None]
    out = camtoworlds.copy()
    out[k, :3] = pose_refine.apply_numpy(wrong, camtoworlds[k:k + 1])[0, :3]
    return out


@pytest.fixture(scope="module")
def refined_run(scene32, tmp_path_factory):
    """400 steps on scene32 with training camera TURNED turned by 3 degrees and pose refinement on:
    (config, model, final state, the loaded training split, the turned cameras)."""
    config = tiny_config(scene32, tmp_path_factory.mktemp("refined"), pose_refine=True, pose_warmup_steps=100,
                         max_steps=400, pose_lr_init=3e-3, pose_lr_final=3e-4, pose_decay=0.0, eval_pose_steps=100)
    mesh = distributed.make_mesh()
    split = datasets.load_split(config, "train")
    camtoworlds = turned(split.camtoworlds, TURNED)
    model = mipnerf360.build_model(config)
    state, tx = update.create_train_state(config, model, mesh, len(split.images))
    data = train_images.put_train_images([split._replace(camtoworlds=camtoworlds)], config, mesh)
    step = update.make_train_step(config, model, tx, mesh)
    for _ in range(config.max_steps):
        state, _ = step(state, data)
    return config, model, state, split, camtoworlds


def test_refinement_recovers_a_perturbed_camera(refined_run):
    _, _, state, split, camtoworlds = refined_run
    true, k = split.camtoworlds[TURNED], TURNED
    start = rotation_error_deg(true, camtoworlds[k])
    refined = pose_refine.apply_numpy(np.asarray(state.poses)[k:k + 1], camtoworlds[k:k + 1])[0]
    error = rotation_error_deg(true, refined)
    assert abs(start - 3.0) < 1e-3 and error < start / 3, (start, error)


@pytest.mark.parametrize("batch", [256, 4096], ids=["sampled", "whole-view"])
def test_test_pose_optimisation_recovers_a_turned_view_with_the_model_frozen(refined_run, batch):
    """A view the model knows, given turned by 3 degrees, is fitted back by eval's test-pose
    optimisation, on `eval_pose_batch` pixels a step or, for a view of fewer (32 x 32 here), on
    every pixel; the parameters it renders with are not changed; the expected time is logged."""
    config, model, state, split, _ = refined_run
    config = config.copy_and_resolve_references()
    config.eval_pose_batch = batch
    k = 7  # a camera the training did not turn, refined little
    true = pose_refine.apply_numpy(np.asarray(state.poses)[k:k + 1], split.camtoworlds[k:k + 1])[0]
    view = split._replace(camtoworlds=turned(split.camtoworlds, k)[k:k + 1], images=split.images[k:k + 1],
                          intrinsics=split.intrinsics.take(slice(k, k + 1)))
    before = jax.tree.map(np.array, state.params)
    lines = []
    refiner = pose_fit.make_refiner(config, model)
    corrections = pose_fit.optimised_poses(refiner, state.params, view, config, lines.append)
    assert refiner.fit._cache_size() == 1  # one compilation: the timed second chunk runs at speed
    fitted = pose_refine.apply_numpy(corrections, view.camtoworlds)[0]
    start, error = rotation_error_deg(true, view.camtoworlds[0]), rotation_error_deg(true, fitted)
    assert start > 2.5 and error < start / 3, (start, error)
    jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.array, state.params))
    assert len(lines) == 1 and lines[0].startswith(f"fitting 1 test poses, 100 steps of {min(batch, 32 * 32)} "
                                                   "pixels each: about ")


def test_exported_colmap_model_reads_back_as_the_refined_cameras(tmp_path):
    write_capture(tmp_path / "scene", count=8, models=("OPENCV",), factors=())
    config = tiny_config(tmp_path / "scene", tmp_path / "exp", dataset="colmap", factor=1, llffhold=4, near=0.2,
                         far=100.0)
    split = datasets.load_split(config, "train")
    rng = np.random.default_rng(1)
    poses = np.concatenate([rng.normal(size=(len(split.images), 3)) * 0.02,
                            rng.normal(size=(len(split.images), 3)) * 0.01], axis=1)
    (tmp_path / "exp").mkdir()
    pose_export.export(tmp_path / "exp", config, pose_export.train_cameras([split]), poses)

    original = colmap_model.read_model(tmp_path / "scene" / "sparse" / "0")
    back = colmap_model.read_model(tmp_path / "exp" / pose_export.SPARSE_DIR)
    assert back.cameras.keys() == original.cameras.keys() and back.images.keys() == original.images.keys()
    record = json.loads((tmp_path / "exp" / pose_export.CAMERAS_FILE).read_text())["frames"]
    names = sorted(im.name for im in original.images.values())
    train = [names[i] for i in colmap.split_indices(len(names), "train", 4, "")]
    assert [f["file"] for f in record] == train
    refined = pose_refine.apply_numpy(poses, split.camtoworlds)
    by_name = {im.name: im for im in back.images.values()}
    for n, name in enumerate(train):
        im = by_name[name]
        in_model = scene_frame.transform_poses(split.transform, conventions.colmap_to_camtoworld(im.qvec, im.tvec)[None])[0]
        np.testing.assert_allclose(in_model, refined[n], atol=1e-5)
        np.testing.assert_allclose(record[n]["camtoworld_model"], refined[n], atol=1e-9)
        np.testing.assert_allclose(conventions.colmap_to_camtoworld(im.qvec, im.tvec), record[n]["camtoworld_capture"],
                                   atol=1e-6)
        old = next(o for o in original.images.values() if o.name == name)
        assert im.id == old.id and im.camera_id == old.camera_id
        np.testing.assert_array_equal(im.point3d_ids, old.point3d_ids)
        assert record[n]["rotation_deg"] == pytest.approx(np.degrees(np.linalg.norm(poses[n, :3])))
    for im in original.images.values():  # test views stay as COLMAP gave them
        if im.name not in train:
            np.testing.assert_allclose(by_name[im.name].qvec, im.qvec)
            np.testing.assert_allclose(by_name[im.name].tvec, im.tvec)


def test_resume_with_another_pose_refine_fails_in_one_line(tiny_scene, tmp_path):
    train.train(tiny_config(tiny_scene, tmp_path, max_steps=2, checkpoint_every=2), log=lambda s: None)
    with pytest.raises(ConfigError, match="config.pose_refine=True differs .* pose_refine=False") as e:
        train.train(tiny_config(tiny_scene, tmp_path, max_steps=4, pose_refine=True), log=lambda s: None)
    assert "\n" not in str(e.value)


def test_a_refined_run_exports_its_cameras_and_restores_for_eval(tiny_scene, tmp_path):
    config = tiny_config(tiny_scene, tmp_path, max_steps=3, checkpoint_every=3, pose_refine=True,
                         pose_warmup_steps=1, eval_pose_steps=2)
    state = train.train(config, log=lambda s: None)
    frames = json.loads((tmp_path / pose_export.CAMERAS_FILE).read_text())["frames"]
    assert len(frames) == state.poses.shape[0] and any(f["rotation_deg"] > 0 for f in frames)
    with contextlib.closing(Checkpointer(checkpoint_dir(config.exp_dir), create=False)) as ckpt:
        restored = ckpt.restore({"poses": state.poses}, partial=True, log=lambda s: None)
    np.testing.assert_array_equal(restored["poses"], state.poses)
    lines = []
    result = evaluate.evaluate(config, log=lines.append)
    assert result["eval_pose_steps"] == 2
    for key in ("psnr", "psnr_color_corrected", "ssim", "lpips_vgg"):  # AlexNet takes no 16-pixel view
        assert np.isfinite(result[f"{key}_test_pose_optimized"])
        assert all(f"{key}_test_pose_optimized" in image for image in result["images"])
    assert lines[-1].startswith("with each test pose optimised (2 steps of at most 256 pixels, model frozen): PSNR")


def test_a_common_motion_of_all_cameras_is_removed_and_the_rest_kept():
    """Corrections that move every camera by one small world motion (exactly, not to first order)
    lose all but a second-order remainder; a correction of one camera alone keeps most of it, and
    what is taken is a common motion (the rest is orthogonal to every one)."""
    rng = np.random.default_rng(0)
    c2w = np.stack([pose_refine.apply_numpy(np.concatenate([rng.normal(size=3), rng.normal(size=3) * 2])[None],
                                            np.eye(4)[None])[0] for _ in range(12)])
    world = pose_refine.apply_numpy(np.array([[0.01, -0.02, 0.015, 0.02, 0.01, -0.03]]), np.eye(4)[None])[0]
    world[:3] *= 1.01  # and a scaling
    moved = world @ c2w
    moved[:, :3, :3] /= 1.01
    corrections = np.zeros((12, 6))
    for n in range(12):  # the exact correction: c2w @ delta = moved
        delta = np.linalg.inv(c2w[n]) @ moved[n]
        angle = np.arccos(np.clip((np.trace(delta[:3, :3]) - 1) / 2, -1, 1))
        axis = np.array([delta[2, 1] - delta[1, 2], delta[0, 2] - delta[2, 0], delta[1, 0] - delta[0, 1]])
        corrections[n] = np.concatenate([axis * angle / (2 * np.sin(angle)), delta[:3, 3]])
    np.testing.assert_allclose(pose_refine.apply_numpy(corrections, c2w), moved, atol=1e-12)
    basis = pose_refine.common_motion_basis(jnp.asarray(c2w, jnp.float32))
    np.testing.assert_allclose(basis.T @ basis, np.eye(7), atol=1e-5)
    left = np.asarray(pose_refine.remove_common_motion(jnp.asarray(corrections, jnp.float32), basis))
    assert np.abs(left).max() < 0.02 * np.abs(corrections).max()
    alone = np.zeros((12, 6), np.float32)
    alone[3] = [0.02, -0.01, 0.0, 0.01, 0.0, 0.02]
    kept = np.asarray(pose_refine.remove_common_motion(jnp.asarray(alone), basis))
    assert np.linalg.norm(kept[3] - alone[3]) < 0.25 * np.linalg.norm(alone[3])
    np.testing.assert_allclose(np.asarray(basis).T @ kept.reshape(-1), 0, atol=1e-7)


@pytest.mark.parametrize("stop,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_ends_eval_during_the_test_pose_fit_within_seconds(tiny_scene, tmp_path, stop, code):
    """A real eval.py fitting test poses for far longer than the test waits (20 views' worth of
    100,000 steps) stops on Ctrl-C or SIGTERM at once: the fit runs a few steps to a jitted call."""
    fields = dict(max_steps=3, checkpoint_every=3, pose_refine=True, pose_warmup_steps=1)
    train.train(tiny_config(tiny_scene, tmp_path, **fields), log=lambda s: None)
    flags = ["--config=tests/helpers.py", f"--config.data_dir={tiny_scene}", f"--config.exp_dir={tmp_path}",
             "--config.eval_pose_steps=100000", "--config.eval_lpips=False"]
    child = subprocess.Popen([sys.executable, "eval.py", *flags], cwd=helpers.ROOT, stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, text=True)
    helpers.read_stderr_until(child, lambda seen: "fit test poses:" in seen)
    time.sleep(2.0)  # well into the first view's fit
    child.send_signal(stop)
    sent = time.monotonic()
    child.communicate(timeout=120)
    assert child.returncode == code and time.monotonic() - sent < 20
