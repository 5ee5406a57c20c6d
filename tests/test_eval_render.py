"""eval.py and render.py: honest metrics, saved renders, camera paths and playable videos."""

import contextlib
import json
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from helpers import ROOT, TRAINED_EVERY as EVERY, TRAINED_STEPS as STEPS, assert_one_line_error, run_config, tiny_config
from mipnerf import datasets, metrics
from mipnerf.cameras import camera, orbits
from mipnerf.commands import evaluate, render
from mipnerf.commands.config_checks import check_config
from mipnerf.datasets import blender
from mipnerf.datasets.builtin import demo
from mipnerf.errors import CheckpointError, ConfigError
from mipnerf.render import rendering, video


def numpy_ssim(a, b, size=11, sigma=1.5, k1=0.01, k2=0.03, mask=None):
    """Gaussian-window SSIM of [H, W, C] images in [0, 1] (Wang et al. 2004), averaged over the valid region.

    With `mask` ([H, W] bool): each window's statistics over its kept pixels, weighted by the window
    (normalised convolution), and the windows averaged with weights equal to their kept pixels' weight.
    """
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-0.5 * (x / sigma) ** 2)
    window = np.outer(g, g) / np.sum(g) ** 2
    kept = np.ones(a.shape[:2] + (1,)) if mask is None else np.asarray(mask, np.float64)[..., None]

    def sums(z):
        patches = np.lib.stride_tricks.sliding_window_view(z, (size, size), axis=(0, 1))
        return np.einsum("hwcij,ij->hwc", patches, window)

    weight = sums(kept)
    blur = lambda z: sums(z * kept) / np.maximum(weight, 1e-30)
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    c1, c2 = k1**2, k2**2
    ssim_map = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(np.sum(weight * ssim_map) / (np.sum(weight) * a.shape[-1]))


def test_ssim_matches_a_reference_implementation_and_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (20, 24, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    expected = numpy_ssim(a, b)
    assert 0.3 < expected < 0.95
    np.testing.assert_allclose(metrics.ssim(a, b), expected, atol=1e-4)
    np.testing.assert_allclose(metrics.ssim(a, a), 1.0, atol=1e-6)
    # Constant images: no variance, so SSIM is the luminance term (2 mu_a mu_b + c1) / (mu_a^2 + mu_b^2 + c1).
    c1 = 0.01**2
    flat = lambda v: np.full((16, 16, 3), v)
    np.testing.assert_allclose(metrics.ssim(flat(0.3), flat(0.5)), (2 * 0.15 + c1) / (0.09 + 0.25 + c1), rtol=1e-4)


def test_psnr_matches_the_formula():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 1, (2, 8, 9, 3))
    np.testing.assert_allclose(metrics.psnr(a, b), 10 * np.log10(1 / np.mean((a - b) ** 2)), rtol=1e-6)
    np.testing.assert_allclose(metrics.psnr(a * 0.5, a * 0.5 + 0.1), 20.0, rtol=1e-6)


def test_masked_pixels_do_not_score(tmp_path):
    rng = np.random.default_rng(2)
    truth = rng.uniform(0, 1, (24, 30, 3))
    render = np.clip(truth + rng.normal(0, 0.1, truth.shape), 0, 1)
    mask = np.ones((24, 30), bool)
    mask[4:15, 6:20] = False  # a person who walked through: its pixels are neither trained nor scored
    mask[20, 3] = False
    painted = render.copy()
    painted[~mask] = [1.0, 0.0, 1.0]  # an impossible colour where the mask is out
    err = (render - truth)[mask]
    np.testing.assert_allclose(metrics.psnr(painted, truth, mask), 10 * np.log10(1 / np.mean(err**2)), rtol=1e-6)
    np.testing.assert_allclose(metrics.ssim(painted, truth, mask), numpy_ssim(render, truth, mask=mask), atol=1e-4)
    assert metrics.ssim(painted, truth, mask) == metrics.ssim(render, truth, mask)
    assert metrics.ssim(painted, truth) < metrics.ssim(render, truth) - 0.05  # unmasked, the paint would count
    # Every pixel kept: the usual SSIM.
    np.testing.assert_allclose(metrics.ssim(render, truth, np.ones_like(mask)), metrics.ssim(render, truth), atol=1e-6)
    # eval.py's scores of a view go through the same functions, on the 8-bit render it writes.
    view = rendering.Image(painted.astype(np.float32), np.ones((24, 30), np.float32), np.ones((24, 30), np.float32))
    scores = evaluate.score_and_save(0, view, truth, tmp_path, disparity=False, mask=mask)
    kept = (np.round(render * 255) / 255).astype(np.float32)
    assert (scores["psnr"], scores["ssim"]) == (metrics.psnr(kept, truth, mask), metrics.ssim(kept, truth, mask))
    written = iio.imread(tmp_path / scores["color"])
    assert metrics.psnr(written / 255.0, truth, mask) == pytest.approx(scores["psnr"], abs=1e-6)


def test_bad_render_and_eval_fields_are_rejected(tmp_path):
    for field, value, needle in [("render_path", "zigzag", "spiral"), ("render_factor", 0, ">= 1"),
                                 ("render_frames", 0, ">= 1"), ("eval_step", -1, ">= 0")]:
        with pytest.raises(ConfigError, match=f"config.{field}=.*{needle}"):
            check_config(tiny_config(tmp_path, tmp_path, **{field: value}))


def test_eval_scores_every_test_view_and_agrees_with_the_saved_pngs(tiny_scene, trained_run):
    config = run_config(tiny_scene, trained_run)
    messages = []
    result = evaluate.evaluate(config, log=messages.append)
    out = trained_run / "eval"
    assert json.loads((out / "metrics.json").read_text()) == result
    assert result["step"] == STEPS and {"psnr", "psnr_color_corrected", "ssim", "images"} <= result.keys()
    assert any(f"PSNR {result['psnr']:.2f}" in m and f"colour-corrected {result['psnr_color_corrected']:.2f}" in m
               for m in messages)
    test = datasets.load_split(config, "test")
    assert [m["ground_truth"] for m in result["images"]] == test.files
    saved_psnr = []
    for entry, gt in zip(result["images"], test.colors(slice(None))):
        color = iio.imread(out / entry["color"])
        depth = iio.imread(out / entry["depth"])
        assert color.dtype == depth.dtype == np.uint8 and color.shape == depth.shape == gt.shape
        saved_psnr.append(-10 * np.log10(np.mean((color / 255.0 - gt) ** 2)))
        assert saved_psnr[-1] == pytest.approx(entry["psnr"], abs=1e-5)  # scored as written: 8-bit
    assert len(saved_psnr) == len(test.images) == 3
    assert np.mean(saved_psnr) == pytest.approx(result["psnr"], abs=1e-5)
    np.testing.assert_allclose(result["psnr"], np.mean([m["psnr"] for m in result["images"]]))
    # The affine colour fit can only lower the error (up to the clipping to [0, 1]).
    assert all(m["psnr_color_corrected"] >= m["psnr"] - 0.05 for m in result["images"])
    np.testing.assert_allclose(result["psnr_color_corrected"],
                               np.mean([m["psnr_color_corrected"] for m in result["images"]]))
    assert result["psnr"] > 16 and 0.3 < result["ssim"] <= 1


def test_eval_step_picks_that_checkpoint(tiny_scene, trained_run):
    assert evaluate.evaluate(run_config(tiny_scene, trained_run, eval_step=EVERY), log=lambda s: None)["step"] == EVERY
    with pytest.raises(CheckpointError, match=f"for step {EVERY + 1} .*found steps: \\[50, 100, 150\\]"):
        evaluate.evaluate(run_config(tiny_scene, trained_run, eval_step=EVERY + 1), log=lambda s: None)


def test_eval_without_checkpoint_names_the_folder_searched(tiny_scene, tmp_path):
    with pytest.raises(CheckpointError, match=str(tmp_path / "checkpoints")):
        evaluate.evaluate(run_config(tiny_scene, tmp_path), log=lambda s: None)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("script", ["eval.py", "render.py"])
def test_commands_without_checkpoint_give_one_line(script, tmp_path):
    result = subprocess.run([sys.executable, script, "--config=configs/demo.py", f"--config.exp_dir={tmp_path}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert_one_line_error(result, str(tmp_path / "checkpoints"), "no checkpoint")


@pytest.mark.parametrize("path,factor", [("spiral", 1), ("orbit", 2)])
def test_render_writes_videos_that_decode(tiny_scene, trained_run, path, factor):
    config = run_config(tiny_scene, trained_run, render_path=path, render_frames=4, render_factor=factor)
    written = render.render_video(config, log=lambda s: None)
    names = [f"{path}_{kind}.{ext}" for kind in ("color", "depth") for ext in ("mp4", "gif")]
    assert [p.name for p in written] == names
    size = 16 // factor
    for p in written:
        assert p.parent == trained_run / "render"
        assert iio.imread(p, index=None).shape == (4, size, size, 3), p
    color = iio.imread(written[1], index=None)
    corners = color[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.min() >= 240  # transparent background stays white


def test_depth_colors_run_from_near_to_far_and_fade_to_white():
    depth = np.linspace(2.0, 4.0, 5)[None]
    opaque = video.colorize_depth(depth, np.ones_like(depth), 2.0, 4.0)
    np.testing.assert_array_equal(opaque[0, 0], video.to_uint8(video.VIRIDIS[-1]))
    np.testing.assert_array_equal(opaque[0, -1], video.to_uint8(video.VIRIDIS[0]))
    np.testing.assert_array_equal(video.colorize_depth(depth, np.zeros_like(depth), 2.0, 4.0), 255)
    acc = np.array([[1.0, 1.0, 0.9, 0.2]])
    assert video.depth_range(np.array([[2.0, 3.0, 4.0, 100.0]]), acc) == pytest.approx((2.02, 3.98))


def spherical(points, center, up):
    """Distances [N] and elevations [N] (radians above the horizontal plane through `center`) of points [N, 3]."""
    offsets = points - center
    distances = np.linalg.norm(offsets, axis=-1)
    return distances, np.arcsin(offsets @ up / distances)


@pytest.mark.parametrize("path", ["spiral", "orbit"])
def test_camera_paths_circle_the_centre_at_the_training_distance(tiny_scene, path):
    train = blender.load_split(tiny_scene, "train").camtoworlds
    frames = 24
    poses = {"spiral": orbits.spiral_path, "orbit": orbits.orbit_path}[path](train, frames)
    assert poses.shape == (frames, 4, 4)
    center, up = orbits.scene_center(train), orbits.up_vector(train)
    np.testing.assert_allclose(center, 0.0, atol=1e-5)  # every demo camera looks at the origin
    train_dist, train_elev = spherical(train[:, :3, 3], center, up)
    dist, elev = spherical(poses[:, :3, 3], center, up)
    np.testing.assert_allclose(dist, np.mean(train_dist), rtol=1e-6)
    np.testing.assert_allclose(dist, demo.CAMERA_RADIUS, rtol=1e-5)
    # Each camera's -Z axis points at the centre, and its image top is upward.
    np.testing.assert_allclose(-poses[:, :3, 2], (center - poses[:, :3, 3]) / dist[:, None], atol=1e-6)
    assert np.all(poses[:, :3, 1] @ up > 0)
    rotations = poses[:, :3, :3]
    np.testing.assert_allclose(np.swapaxes(rotations, 1, 2) @ rotations, np.broadcast_to(np.eye(3), rotations.shape),
                               atol=1e-9)
    # One full turn about the up axis in equal steps.
    east = np.cross(up, [1.0, 0.0, 0.0])
    north = np.cross(up, east)
    offsets = poses[:, :3, 3] - center
    azimuths = np.unwrap(np.arctan2(offsets @ north, offsets @ east))
    turn = np.sign(azimuths[1] - azimuths[0]) * 2 * np.pi
    np.testing.assert_allclose(np.diff(np.append(azimuths, azimuths[0] + turn)), turn / frames, rtol=1e-6)
    np.testing.assert_allclose(np.mean(elev), np.mean(train_elev), atol=1e-9)
    if path == "orbit":
        np.testing.assert_allclose(elev, np.mean(train_elev), atol=1e-9)
    else:
        assert np.ptp(elev) > np.radians(10)
        assert np.min(train_elev) <= np.min(elev) and np.max(elev) <= np.max(train_elev)


def test_rendering_is_deterministic_and_compiles_once(tiny_scene, trained_run):
    config = run_config(tiny_scene, trained_run, render_chunk=100)
    renderer = rendering.load_renderer(config)
    test = datasets.load_split(config, "test")
    twice = list(rendering.render_views(renderer, test.camtoworlds[[0, 0]], test.intrinsics.take([0, 0]), 16, 16, config,
                                        desc="test"))
    for a, b in zip(*twice):
        np.testing.assert_array_equal(a, b)
    # 16x16, 8x8 and 10x12 pixels are 3, 1 and 2 chunks of 100 rays: still the one compiled function.
    for height, width in [(8, 8), (10, 12)]:
        cam = camera.Intrinsics.pinhole(test.intrinsics.fx[0] * width / 16, width, height)
        images = list(rendering.render_views(renderer, test.camtoworlds[:2], cam, height, width, config, desc="test"))
        assert images[0].rgb.shape == (height, width, 3) and images[1].depth.shape == (height, width)
    assert renderer.render_fn._cache_size() == 1


def test_every_render_path_that_the_config_accepts_exists():
    from mipnerf.commands.config_checks import RENDER_PATHS

    assert tuple(render.PATHS) + ("file",) == RENDER_PATHS


def test_inference_modules_do_not_import_the_training_step():
    code = ("import sys; from mipnerf.commands import evaluate, export, render, view; "
            "training = ('mipnerf.training.update', 'mipnerf.training.train_images', 'mipnerf.commands.train'); "
            "print(sorted(m for m in training if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_run_whose_optimizer_state_cannot_be_built_still_renders(tiny_scene, trained_run, tmp_path):
    """A checkpoint whose optimizer state has another structure (another optimizer, or a future
    change) restores for rendering: only the step and the parameters are read."""
    import shutil

    import optax

    from mipnerf.store.checkpoints import Checkpointer, checkpoint_dir

    shutil.copytree(trained_run / "checkpoints" / str(STEPS), tmp_path / "checkpoints" / str(STEPS))
    shutil.copy(trained_run / "config.json", tmp_path / "config.json")
    config = run_config(tiny_scene, tmp_path)
    renderer = rendering.load_renderer(config, log=lambda s: None)
    with contextlib.closing(Checkpointer(checkpoint_dir(tmp_path))) as ckpt:
        state = {"step": np.int32(STEPS + 1), "params": renderer.params,
                 "opt_state": optax.sgd(0.1, momentum=0.9).init(renderer.params), "extra": np.arange(5.0)}
        ckpt.save(STEPS + 1, state)
    other = rendering.load_renderer(config, log=lambda s: None)
    assert other.step == STEPS + 1
    test = datasets.load_split(config, "test")
    views = [next(rendering.render_views(r, test.camtoworlds[:1], test.intrinsics.take([0]), 16, 16, config, desc="t"))
             for r in (renderer, other)]
    np.testing.assert_array_equal(views[0].rgb, views[1].rgb)


def run_command(command: str, config, log):
    """Runs eval.py's, render.py's, view.py's or export.py's work on `config`, logging to `log`."""
    from mipnerf.commands import export, view

    if command == "view":
        view.serve(config, log=log, forever=False).close()
    elif command == "export":
        export.export(config, log=log)
    elif command == "render":
        render.render_video(config, log=log)
    else:
        evaluate.evaluate(config, log=log)


@pytest.mark.parametrize("command", ["eval", "render", "view", "export"])
def test_every_command_takes_eval_step_and_says_when_it_skips_a_damaged_checkpoint(tiny_scene, trained_run, tmp_path,
                                                                                   command):
    import shutil

    exp_dir = tmp_path / "run"
    shutil.copytree(trained_run, exp_dir)
    lines = []
    run_command(command, run_config(tiny_scene, exp_dir, eval_step=EVERY, viewer_port=0), lines.append)
    assert f"step {EVERY}" in lines[-1]
    (exp_dir / "checkpoints" / str(STEPS) / "_CHECKPOINT_METADATA").write_text("{}")
    lines = []
    run_command(command, run_config(tiny_scene, exp_dir, viewer_port=0), lines.append)
    assert any(f"checkpoint {STEPS} is damaged" in line and f"corrupt-{STEPS}" in line for line in lines), lines
    assert f"step {STEPS - EVERY}" in lines[-1]
