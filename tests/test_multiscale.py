"""mip-NeRF's multiscale setting: the converter, the loader, the weighted loss, the PE ablation and per-scale eval."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from helpers import tiny_config
from mipnerf.cameras import camera, orbits
from mipnerf.commands import evaluate, train
from mipnerf.datasets import blender, multiscale
from mipnerf.errors import DatasetError
from mipnerf.model import coord, mipnerf360
from mipnerf.training import update


@pytest.fixture
def blocks_scene(tmp_path):
    """A Blender scene of one 8x8 RGBA image made of 2x2 blocks of constant colour, multiples of 16."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 16, size=(4, 4, 4)) * 16
    blocks[..., 3] = np.maximum(blocks[..., 3], 16)
    image = blocks.repeat(2, axis=0).repeat(2, axis=1).astype(np.uint8)
    (tmp_path / "src" / "train").mkdir(parents=True)
    Image.fromarray(image, "RGBA").save(tmp_path / "src" / "train" / "r_0.png")
    pose = orbits.look_at(np.array([0.0, -4.0, 1.0]))
    meta = {"camera_angle_x": 0.7, "frames": [{"file_path": "./train/r_0", "transform_matrix": pose.tolist()}]}
    (tmp_path / "src" / "transforms_train.json").write_text(json.dumps(meta))
    return tmp_path, image, pose


def test_converter_averages_straight_rgba_at_every_scale_and_round_trips(blocks_scene):
    root, image, pose = blocks_scene
    multiscale.convert(root / "src", root / "dst", scales=4)
    meta = json.loads((root / "dst" / "metadata.json").read_text())["train"]
    assert meta["label"] == [0, 1, 2, 3] and meta["lossmult"] == [1.0, 4.0, 16.0, 64.0]
    focal = 0.5 * 8 / np.tan(0.35)
    np.testing.assert_allclose(meta["focal"], focal / 2.0 ** np.arange(4))
    expected = image.astype(np.float64)
    for scale, name in enumerate(meta["file_path"]):
        written = np.asarray(Image.open(root / "dst" / name))
        np.testing.assert_array_equal(written, expected.astype(np.uint8))  # exact: block values are multiples of 16
        assert written.shape == (8 // 2**scale, 8 // 2**scale, 4)
        if scale < 3:
            h, w = expected.shape[:2]
            expected = expected.reshape(h // 2, 2, w // 2, 2, 4).mean(axis=(1, 3))
    scales = multiscale.load_scales(root / "dst", "train")
    assert [s.scale for s in scales] == [0, 1, 2, 3] and [s.width for s in scales] == [8, 4, 2, 1]
    full = blender.load_split(root / "src", "train")
    np.testing.assert_array_equal(scales[0].images, full.images)
    rgba = image.reshape(4, 2, 4, 2, 4).mean(axis=(1, 3)) / 255.0
    # Composited on load and rounded to uint8.
    np.testing.assert_allclose(scales[1].images[0], (rgba[..., :3] * rgba[..., 3:] + 1 - rgba[..., 3:]) * 255,
                               atol=0.5 + 1e-4)
    for s in scales:
        np.testing.assert_allclose(s.camtoworlds[0], pose, atol=1e-6)
        np.testing.assert_allclose([s.intrinsics.fx[0], s.intrinsics.cx[0], s.intrinsics.cy[0]],
                                   [focal / 2**s.scale, 4 / 2**s.scale, 4 / 2**s.scale], rtol=1e-6)
        np.testing.assert_array_equal(s.lossmult, [4.0**s.scale])


def test_converter_crops_about_the_centre_and_keeps_the_principal_point(tmp_path):
    blender_scene = tmp_path / "src"
    from mipnerf.datasets.builtin import demo

    demo.render_demo_scene(blender_scene, size=20, n_train=2, n_val=1, n_test=1, spp=1)
    multiscale.convert(blender_scene, tmp_path / "dst", scales=3)  # 20 -> 20, 10, 5 (20 is divisible by 4)
    multiscale.convert(blender_scene, tmp_path / "dst8", scales=4)  # 20 -> 16: 2 pixels off each side
    full = blender.load_split(blender_scene, "train")
    scales = multiscale.load_scales(tmp_path / "dst8", "train")
    assert [s.width for s in scales] == [16, 8, 4, 2]
    np.testing.assert_array_equal(scales[0].images, full.images[:, 2:18, 2:18])
    # The same rays: pixel (i, j) of the crop is pixel (i + 2, j + 2) of the original.
    cropped = camera.generate_rays(scales[0].camtoworlds, scales[0].intrinsics, 16, 16, 2.0, 6.0)
    original = camera.generate_rays(full.camtoworlds, full.intrinsics, 20, 20, 2.0, 6.0)
    np.testing.assert_allclose(cropped.directions, original.directions[:, 2:18, 2:18], atol=1e-6)


def test_weighted_loss_is_the_weighted_mean(tmp_path):
    rng = np.random.default_rng(1)
    rgb, target = jnp.array(rng.uniform(size=(5, 3))), jnp.array(rng.uniform(size=(5, 3)))
    lossmult = jnp.array([[1.0], [4.0], [4.0], [16.0], [64.0]])
    err = np.asarray(rgb - target) ** 2
    expected = np.sum(err * np.asarray(lossmult)) / (3 * np.sum(lossmult))
    config = tiny_config(tmp_path, tmp_path)
    np.testing.assert_allclose(update.data_loss(rgb, target, config, lossmult), expected, rtol=1e-6)
    config.multiscale_loss = False
    np.testing.assert_allclose(update.data_loss(rgb, target, config, lossmult), np.mean(err), rtol=1e-6)


def test_disable_integration_feeds_the_mlp_pos_enc_of_the_means():
    rng = np.random.default_rng(2)
    mean, var = jnp.array(rng.normal(size=(4, 5, 3)), jnp.float32), jnp.array(rng.uniform(0, 0.1, (4, 5, 3)), jnp.float32)
    inputs = {}

    def capture(next_fun, args, kwargs, context):
        if context.method_name == "__call__" and context.module.name == "layer_0":
            inputs[context.module.parent.disable_integration] = args[0]
        return next_fun(*args, **kwargs)

    for disable in (False, True):
        mlp = mipnerf360.MLP(depth=2, width=16, skip_layer=4, min_deg_point=0, max_deg_point=6, density_bias=-1.0,
                         disable_integration=disable)
        params = mlp.init(jax.random.PRNGKey(0), mean, var)
        with nn.intercept_methods(capture):
            mlp.apply(params, mean, var)
    np.testing.assert_array_equal(inputs[True], coord.pos_enc(mean, 0, 6, append_identity=False))
    np.testing.assert_array_equal(inputs[False], coord.integrated_pos_enc(mean, var, 0, 6))
    assert not np.allclose(inputs[True], inputs[False])


def test_eval_reports_every_scale(tiny_scene, tmp_path):
    multiscale.convert(tiny_scene, tmp_path / "scene", scales=2)  # 16 and 8 pixels
    config = tiny_config(tmp_path / "scene", tmp_path / "exp", dataset="multiscale", max_steps=30)
    train.train(config, log=lambda s: None)
    messages = []
    result = evaluate.evaluate(config, log=messages.append)
    rows = result["per_scale"]
    assert [(r["scale"], r["width"], r["count"]) for r in rows] == [(0, 16, 3), (1, 8, 3)]
    assert sum(r["count"] for r in rows) == len(result["images"]) == 6
    for r in rows:
        scored = [m for m in result["images"] if m["scale"] == r["scale"]]
        assert r["psnr"] == pytest.approx(np.mean([m["psnr"] for m in scored]))
    assert result["psnr_scale_mean"] == pytest.approx(np.mean([r["psnr"] for r in rows]))
    # The 8-pixel views are scored with a 7x7 window, and say so.
    assert {m.get("ssim_window") for m in result["images"]} == {None, 7}
    assert "mean of the scales" in messages[0]
    assert json.loads((tmp_path / "exp" / "eval" / "metrics.json").read_text())["per_scale"] == rows
    # LPIPS where the network takes the views (VGG: 16 pixels and up; AlexNet: 31), null elsewhere.
    assert [r["lpips_vgg"] is None for r in rows] == [False, True] and all(r["lpips_alex"] is None for r in rows)
    assert rows[0]["lpips_vgg"] == pytest.approx(np.mean([m["lpips_vgg"] for m in result["images"] if m["scale"] == 0]))
    assert result["lpips_vgg_scale_mean"] == rows[0]["lpips_vgg"] and result["lpips_alex_scale_mean"] is None
    assert "LPIPS n/a (alex)" in messages[-1] and "n/a" in messages[0]


def _edit(root, edit):
    path = root / "metadata.json"
    meta = json.loads(path.read_text())
    edit(meta["train"])
    path.write_text(json.dumps(meta))


BREAKAGES = {
    "missing key": (lambda r: _edit(r, lambda m: m.pop("lossmult")), "split 'train' lacks the list.*lossmult"),
    "unequal lists": (lambda r: _edit(r, lambda m: m["focal"].pop()), "split 'train' has lists of lengths"),
    "size": (lambda r: _edit(r, lambda m: m["width"].__setitem__(1, 99)), "split .train., entry 1: image file .* is 4x4.*99x4"),
    "missing image": (lambda r: (r / "train" / "r_0_d1.png").unlink(), "r_0_d1.png is missing"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_bad_metadata_names_the_file_split_and_entry(blocks_scene, breakage):
    root = blocks_scene[0]
    multiscale.convert(root / "src", root / "dst", scales=2)
    damage, pattern = BREAKAGES[breakage]
    damage(root / "dst")
    with pytest.raises(DatasetError, match=pattern) as info:
        multiscale.load_scales(root / "dst", "train")
    assert str(root / "dst") in str(info.value) and "\n" not in str(info.value)


def test_zoom_path_pulls_back_four_times():
    c2w = np.stack([orbits.look_at(np.array([4 * np.cos(a), 4 * np.sin(a), 2.0])) for a in np.linspace(0, 6, 12)])
    poses = orbits.zoom_path(c2w, 9)
    distances = np.linalg.norm(poses[:, :3, 3] - orbits.scene_center(c2w), axis=-1)
    np.testing.assert_allclose(distances[-1] / distances[0], 4.0, rtol=1e-6)
    np.testing.assert_allclose(distances[0], np.sqrt(20.0), rtol=1e-6)
    np.testing.assert_allclose(np.diff(np.log(distances)), np.log(4.0) / 8, rtol=1e-6)
    directions = (poses[:, :3, 3] - orbits.scene_center(c2w)) / distances[:, None]
    np.testing.assert_allclose(directions, directions[:1].repeat(9, 0), atol=1e-9)


def test_converter_command_line(tiny_scene, tmp_path):
    import subprocess
    import sys

    from helpers import ROOT, assert_one_line_error

    command = [sys.executable, "-m", "mipnerf.datasets.multiscale"]
    result = subprocess.run(command + [str(tiny_scene), str(tmp_path / "out"), "--scales", "2"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert [s.width for s in multiscale.load_scales(tmp_path / "out", "val")] == [16, 8]
    missing = subprocess.run(command + [str(tmp_path / "nowhere"), str(tmp_path / "out2")], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert_one_line_error(missing, "nowhere", "does not exist")


def test_zoom_frames_move_near_and_far_back_with_the_camera(tiny_scene, tmp_path):
    from mipnerf.commands import render
    from mipnerf.render import rendering

    train = blender.load_split(tiny_scene, "train")
    config = tiny_config(tiny_scene, tmp_path, render_path="zoom", render_frames=5)
    poses = render.PATHS["zoom"](train, config)
    orbit = orbits.camera_orbit(train.camtoworlds)
    offsets = rendering.depth_offsets(poses[:, :3, 3], orbit, config)
    distances = np.linalg.norm(poses[:, :3, 3] - orbits.scene_center(train.camtoworlds), axis=-1)
    training = np.median(np.linalg.norm(train.camtoworlds[:, :3, 3] - orbits.scene_center(train.camtoworlds), axis=-1))
    np.testing.assert_allclose(offsets, distances - training, atol=1e-9)
    np.testing.assert_allclose(distances[-1], 4 * distances[0], rtol=1e-6)
    near, far = rendering.ray_bounds(config, offsets[-1])
    assert (near, far) == (config.near + offsets[-1], config.far + offsets[-1])
    assert rendering.ray_bounds(config, -2 * config.near)[0] == 0.0
    for unbounded in ({"contraction": True}, {"forward_facing": True}):
        assert rendering.depth_offsets(poses[:, :3, 3], orbit, tiny_config(tiny_scene, tmp_path, **unbounded)) is None
