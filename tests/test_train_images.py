"""The training set on the device: uint8 images with a camera each, pixels drawn uniformly inside the
step, their colours gathered and their rays cast there exactly as the host casts a whole image's."""

import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from captures import CAMERAS, reference_project, write_capture
from helpers import ROOT, tiny_config
from mipnerf import datasets
from mipnerf.datasets import multiscale
from mipnerf.errors import ConfigError
from mipnerf.model import mipnerf360
from mipnerf.training import distributed, train_images, update


def capture_config(root, exp_dir, **overrides):
    settings = dict(dataset="colmap", factor=1, llffhold=0, near=0.2, far=100.0)
    return tiny_config(root, exp_dir, **{**settings, **overrides})


@pytest.fixture(scope="module")
def multiscale_scene(tiny_scene, tmp_path_factory):
    """The tiny scene at 16, 8, 4 and 2 pixels."""
    out = tmp_path_factory.mktemp("multiscale")
    multiscale.convert(tiny_scene, out, scales=4)
    return out


def draw(config, splits, batch_size: int, key, mesh=None):
    """`draw_batch` of the splits put on `mesh` (default: one device), jitted, on the host."""
    mesh = mesh or distributed.make_mesh(jax.devices()[:1])
    images = train_images.put_train_images(splits, config, mesh)
    drawn = jax.jit(lambda images, key: train_images.draw_batch(images, key, batch_size, mesh))(images, key)
    return jax.device_get(drawn)


def reference_rays(split, n: int, pixels: np.ndarray, config, model=None) -> dict:
    """The rays through row-major pixels [P] of image n of a split, cast here in float64 from their
    definitions, without `mipnerf.camera`: each pixel centre's direction inverts the camera's
    projection (Newton's method on `captures.reference_project` for COLMAP model `model`, else an
    ideal pinhole of the split's intrinsics), the cone's radius is 2 / sqrt(12) of the distance to
    the next pixel's direction, and in NDC (`config.forward_facing`) the rays are the images of
    their world rays under NeRF's projective map onto the frustum beyond z = -1.

    Returns:
      {field of `camera.Rays`: [P, C]}.
    """
    intrinsics = split.intrinsics.take(n)
    fx, fy, cx, cy = (float(intrinsics[k]) for k in range(4))
    if model is None:
        assert not np.any(intrinsics.distortion) and not intrinsics.fisheye
        project = lambda p: np.stack([fx * p[:, 0] / p[:, 2] + cx, fy * p[:, 1] / p[:, 2] + cy], axis=-1)
    else:
        project = lambda p: reference_project(model, CAMERAS[model], p)
    j, i = np.divmod(np.asarray(pixels, np.int64), split.width)

    def camera_direction(u, v):
        """Camera-space (OpenGL) directions [P, 3] through pixel positions: z = -1, or of unit length for a fisheye."""
        target = np.stack([u, v], axis=-1)
        point = lambda ab: np.concatenate([ab, np.ones((len(ab), 1))], axis=-1)  # OpenCV axes, z = 1
        ab, eps = (target - [cx, cy]) / [fx, fy], 1e-6  # the ideal pinhole's, to start from
        for _ in range(30):
            jacobian = np.stack([(project(point(ab + d)) - project(point(ab - d))) / (2 * eps)
                                 for d in (np.array([eps, 0.0]), np.array([0.0, eps]))], axis=-1)
            ab = ab - np.linalg.solve(jacobian, (project(point(ab)) - target)[..., None])[..., 0]
        np.testing.assert_allclose(project(point(ab)), target, atol=1e-9)
        d = point(ab) * [1.0, -1.0, -1.0]  # OpenCV's axes (+y down, +z forward) to OpenGL's
        return d / np.linalg.norm(d, axis=-1, keepdims=True) if model == "OPENCV_FISHEYE" else d

    c2w = np.asarray(split.camtoworlds[n], np.float64)
    here, right = camera_direction(i + 0.5, j + 0.5), camera_direction(i + 1.5, j + 0.5)
    directions = here @ c2w[:3, :3].T
    origins = np.broadcast_to(c2w[:3, 3], directions.shape)
    viewdirs = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    radii = np.linalg.norm(here - right, axis=-1)
    if config.forward_facing:
        sx, sy = 2 * fx / split.width, 2 * fy / split.height

        def ndc_origin(d):
            """The image of the world ray's point at z = -1: (-sx x / z, -sy y / z, 1 + 2 / z)."""
            p = origins + ((-1.0 - origins[:, 2]) / d[:, 2])[:, None] * d
            return np.stack([-sx * p[:, 0] / p[:, 2], -sy * p[:, 1] / p[:, 2], 1 + 2 / p[:, 2]], axis=-1)

        ndc = ndc_origin(directions)
        at_infinity = np.stack([-sx * directions[:, 0] / directions[:, 2], -sy * directions[:, 1] / directions[:, 2],
                                np.ones(len(directions))], axis=-1)  # the image of the ray's point at infinity
        radii = np.linalg.norm(ndc - ndc_origin(right @ c2w[:3, :3].T), axis=-1)
        origins, directions = ndc, at_infinity - ndc
    full = lambda v: np.full((len(pixels), 1), v, np.float64)
    return dict(origins=origins, directions=directions, viewdirs=viewdirs, radii=radii[:, None] * 2 / np.sqrt(12),
                near=full(config.near), far=full(config.far))


def check_draw(drawn, splits, config, models=None) -> None:
    """Every drawn ray and colour is the host's ray and the image's colour at the drawn pixel, and
    the ray is `reference_rays`'. The host casts its rays with the step's caster
    (`camera.cast_rays`), so matching it checks the draw (which pixel, which camera); matching
    `reference_rays`, cast independently here, checks the casting.

    models: the COLMAP models of a capture written by `captures.write_capture` (image k, img_k,
      uses models[k % len(models)]), or None for ideal pinhole cameras.
    """
    rays = [datasets.split_rays(s, config) for s in splits]
    per_image = [(s, n, r) for s, r in zip(splits, rays) for n in range(len(s.images))]
    image, pixel = drawn.image, drawn.pixel
    assert image.min() >= 0 and image.max() < len(per_image)
    expected = [[] for _ in range(6)]
    colours, weights = [], []
    for g, p in zip(image, pixel):
        split, n, r = per_image[g]
        assert 0 <= p < split.height * split.width
        for field, x in zip(expected, r):
            field.append(x[n].reshape(-1, x.shape[-1])[p])
        colours.append(split.images[n].reshape(-1, 3)[p])
        weights.append(1.0 if split.lossmult is None else split.lossmult[n])
    batch = drawn.batch
    for name, got, want in zip(batch.rays._fields, batch.rays, expected):
        # Cast in float32 on the device against float64 on the host. Radii are differences of
        # neighbouring unit-scale directions, so their error is float32's at scale 1, not at theirs.
        atol = 2e-6 if name == "radii" else 1e-5
        np.testing.assert_allclose(got, np.array(want), rtol=1e-5, atol=atol, err_msg=name)
    for g in np.unique(image):
        split, n, _ = per_image[g]
        model = None if models is None else models[int(pathlib.Path(split.files[n]).stem[4:]) % len(models)]
        reference = reference_rays(split, n, pixel[image == g], config, model)
        for name, got in zip(batch.rays._fields, batch.rays):
            atol = 2e-6 if name == "radii" else 1e-5
            np.testing.assert_allclose(got[image == g], reference[name], rtol=1e-5, atol=atol,
                                       err_msg=f"{name} of image {g} against the reference cast")
    # The same colour, up to the rounding of x / 255 (XLA multiplies by 1 / 255).
    np.testing.assert_allclose(batch.rgb, np.array(colours, np.float32) / np.float32(255), rtol=2e-7, atol=0)
    if batch.lossmult is not None:
        np.testing.assert_array_equal(batch.lossmult[:, 0], weights)


@pytest.mark.parametrize("model", list(CAMERAS))
def test_rays_cast_in_the_step_are_the_hosts_for_every_camera_model(tmp_path, model):
    write_capture(tmp_path, count=6, models=(model, "PINHOLE"), factors=())
    config = capture_config(tmp_path, tmp_path / "exp")
    splits = datasets.load_scales(config, "train")
    check_draw(draw(config, splits, 512, jax.random.PRNGKey(0)), splits, config, models=(model, "PINHOLE"))


def test_rays_cast_in_the_step_are_the_hosts_in_ndc(tmp_path):
    write_capture(tmp_path, count=6, models=("OPENCV",), factors=(), forward=True)
    config = capture_config(tmp_path, tmp_path / "exp", forward_facing=True, near=0.0, far=1.0)
    splits = datasets.load_scales(config, "train")
    drawn = draw(config, splits, 512, jax.random.PRNGKey(1))
    check_draw(drawn, splits, config, models=("OPENCV",))
    np.testing.assert_allclose(drawn.batch.rays.origins[:, 2], -1.0, atol=1e-5)  # NDC: on the near plane


def test_multiscale_draws_are_uniform_over_pixels_and_match_their_images(multiscale_scene, tmp_path):
    config = tiny_config(multiscale_scene, tmp_path, dataset="multiscale")
    splits = datasets.load_scales(config, "train")
    assert [s.width for s in splits] == [16, 8, 4, 2]
    check_draw(draw(config, splits, 1024, jax.random.PRNGKey(2)), splits, config)
    # Every image is hit in proportion to its pixel count: 256, 64, 16 and 4 pixels.
    sizes = np.concatenate([np.full(len(s.images), s.height * s.width) for s in splits])
    hits = np.zeros(len(sizes))
    for k in range(20):
        drawn = draw(config, splits, 16384, jax.random.PRNGKey(100 + k))
        hits += np.bincount(drawn.image, minlength=len(sizes))
    expected = hits.sum() * sizes / sizes.sum()
    assert np.all(np.abs(hits - expected) < 5 * np.sqrt(expected) + 1), np.stack([hits, expected], -1)


def test_a_multiscale_steps_gradient_is_the_hand_weighted_losses(multiscale_scene, tmp_path):
    """The step's update under SGD with learning rate 1 is minus the gradient of the data loss
    weighted by hand (each ray by its image's 4^scale), computed from the same drawn rays."""
    config = tiny_config(multiscale_scene, tmp_path, dataset="multiscale", interlevel_loss_mult=0.0,
                         distortion_loss_mult=0.0, data_loss="mse")
    mesh = distributed.make_mesh(jax.devices()[:1])
    splits = datasets.load_scales(config, "train")
    images = train_images.put_train_images(splits, config, mesh)
    model = mipnerf360.build_model(config)
    state, _ = update.create_train_state(config, model, mesh)
    batch = train_images.sample_batch(images, jax.random.PRNGKey(5), 512, mesh)
    key = jax.random.PRNGKey(6)
    assert len(np.unique(np.asarray(batch.lossmult))) == 4  # rays of every scale

    def hand_loss(params, weighted: bool):
        out, _ = model.apply(params, jax.random.split(key, 512), batch.rays, 0.0, mipnerf360.background_color(config),
                             batch.image)
        w = batch.lossmult if weighted else jnp.ones_like(batch.lossmult)
        return jnp.sum(w * (out.rgb - batch.rgb) ** 2) / (3 * jnp.sum(w))

    sgd = optax.sgd(1.0)
    state = state.replace(opt_state=sgd.init(state.params))
    updated, _ = jax.jit(update.make_update(config, model, sgd))(state, batch, key)
    step_grads = jax.tree.map(lambda a, b: a - b, state.params, updated.params)
    close = lambda a, b: all(np.allclose(x, y, rtol=1e-3, atol=1e-7) for x, y in zip(jax.tree.leaves(a),
                                                                                       jax.tree.leaves(b)))
    assert close(step_grads, jax.grad(hand_loss)(state.params, True))
    assert not close(step_grads, jax.grad(hand_loss)(state.params, False))


def test_every_pixel_is_reachable_and_none_out_of_range(tiny_scene, tmp_path):
    config = tiny_config(tiny_scene, tmp_path)
    split = datasets.load_split(config, "train")
    seen = np.zeros((len(split.images), split.height * split.width), bool)
    for k in range(8):
        drawn = draw(config, [split], 16384, jax.random.PRNGKey(k))
        assert drawn.pixel.min() >= 0 and drawn.pixel.max() < split.height * split.width
        seen[drawn.image, drawn.pixel] = True
    assert seen.all()  # 131k draws over 3072 pixels: each is expected 43 times


def with_masks(split, seed=0):
    """The split with masks: a random rectangle out of each image, a few scattered pixels, and the
    whole of image 1 but one row."""
    rng = np.random.default_rng(seed)
    masks = rng.uniform(size=split.images.shape[:3]) > 0.05
    for mask in masks:
        top, left = rng.integers(0, split.height // 2), rng.integers(0, split.width // 2)
        mask[top:top + split.height // 3, left:left + split.width // 2] = False
    masks[1] = False
    masks[1, 7] = True
    return split._replace(masks=masks)


def test_masked_pixels_are_never_drawn_and_kept_ones_all_are(tiny_scene, tmp_path):
    config = tiny_config(tiny_scene, tmp_path)
    split = with_masks(datasets.load_split(config, "train"))
    seen = np.zeros(split.masks.shape, bool)
    for k in range(4):
        drawn = draw(config, [split], 16384, jax.random.PRNGKey(k))
        j, i = np.divmod(drawn.pixel, split.width)
        assert split.masks[drawn.image, j, i].all()
        seen[drawn.image, j, i] = True
    check_draw(drawn, [split], config)
    np.testing.assert_array_equal(seen, split.masks)  # 65k draws over 2.4k kept pixels: each about 27 times
    # The device holds the kept pixels only.
    images = train_images.put_train_images([split], config, distributed.make_mesh(jax.devices()[:1]))
    assert int(images.counts[0]) == split.masks.sum() == len(images.pixels)


def test_masked_colours_never_reach_training(tiny_scene, tmp_path):
    """Training on images whose masked-out pixels are painted two impossible colours gives the same
    parameters, bit for bit: masked pixels never contribute to any loss term."""
    config = tiny_config(tiny_scene, tmp_path)
    split = with_masks(datasets.load_split(config, "train"), seed=1)
    mesh = distributed.make_mesh()
    model = mipnerf360.build_model(config)
    step = None
    params = []
    for colour in ([255, 0, 255], [0, 255, 0]):
        painted = split._replace(images=np.where(split.masks[..., None], split.images, np.uint8(colour)))
        state, tx = update.create_train_state(config, model, mesh)
        step = step or update.make_train_step(config, model, tx, mesh)
        data = train_images.put_train_images([painted], config, mesh)
        for _ in range(3):
            state, stats = step(state, data)
        assert np.isfinite(float(stats["loss"]))
        params.append(jax.device_get(state.params))
    jax.tree.map(np.testing.assert_array_equal, *params)


def test_the_device_holds_uint8_images_and_no_per_pixel_floats(tiny_scene, tmp_path):
    config = tiny_config(tiny_scene, tmp_path)
    split = datasets.load_split(config, "train")
    pixels = split.images.shape[0] * split.height * split.width
    before = {id(a) for a in jax.live_arrays()}
    images = train_images.put_train_images([split], config, distributed.make_mesh(jax.devices()[:1]))
    new = [a for a in jax.live_arrays() if id(a) not in before]
    assert images.pixels.dtype == np.uint8 and images.pixels.shape == (pixels, 3)
    np.testing.assert_array_equal(np.asarray(images.pixels), split.images.reshape(-1, 3))
    # Besides the pixels, a few numbers per image: nothing grows with the pixel count.
    others = [a for a in new if a is not images.pixels and not (a.dtype == np.uint8 and a.size == pixels * 3)]
    assert others and all(a.size <= 16 * len(split.images) for a in others), [(a.dtype, a.shape) for a in others]
    assert sum(a.nbytes for a in new) < 3.5 * pixels


def test_image_blocks_balance_pixels_with_whole_images():
    np.testing.assert_array_equal(train_images.image_blocks(np.full(12, 256), 2), [0, 6, 12])
    cuts = train_images.image_blocks(np.array([256] * 12 + [64] * 12 + [16] * 12 + [4] * 12), 4)
    shares = np.add.reduceat(np.array([256] * 12 + [64] * 12 + [16] * 12 + [4] * 12), cuts[:-1])
    assert np.all(np.diff(cuts) >= 1) and shares.max() - shares.min() <= 256
    np.testing.assert_array_equal(train_images.image_blocks(np.array([1000, 1, 1]), 3), [0, 1, 2, 3])
    with pytest.raises(ConfigError, match="2 training images cannot be shared by 4 devices"):
        train_images.image_blocks(np.full(2, 10), 4)


FOUR_DEVICES = """
import sys
sys.path.insert(0, {tests!r})
import jax
from helpers import tiny_config
from mipnerf import datasets
from mipnerf.training import distributed, update
import test_train_images as t
assert jax.device_count() == 4
config = tiny_config({scene!r}, {exp!r}, dataset="multiscale")
splits = datasets.load_scales(config, "train")
drawn = t.draw(config, splits, 1024, jax.random.PRNGKey(3), distributed.make_mesh())
t.check_draw(drawn, splits, config)
print("checked", len(drawn.image))
# Masked images: each device draws from its block's kept pixels only.
config = tiny_config({tiny!r}, {exp!r})
split = t.with_masks(datasets.load_split(config, "train"))
drawn = t.draw(config, [split], 1024, jax.random.PRNGKey(4), distributed.make_mesh())
t.check_draw(drawn, [split], config)
j, i = divmod(drawn.pixel, split.width)
assert split.masks[drawn.image, j, i].all() and len(set(drawn.image.tolist())) > 4
print("checked masked", len(drawn.image))
"""


def test_four_devices_draw_from_their_own_blocks_of_images(multiscale_scene, tiny_scene, tmp_path):
    script = FOUR_DEVICES.format(tests=str(ROOT / "tests"), scene=str(multiscale_scene), tiny=str(tiny_scene),
                                 exp=str(tmp_path))
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    import os

    result = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, **env), cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "checked 1024" in result.stdout and "checked masked 1024" in result.stdout
