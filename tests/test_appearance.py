"""Per-image appearance: the colour-corrected PSNR's affine fit, and appearance vectors that change
the NeRF field's colour but never its density."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers  # noqa: F401  (puts the repository on the path)
from mipnerf import metrics
from mipnerf.errors import ConfigError
from mipnerf.model import mipnerf360


def test_color_fit_recovers_an_affine_transform_exactly():
    rng = np.random.default_rng(0)
    render = rng.uniform(0.2, 0.8, size=(16, 12, 3))
    matrix = np.array([[0.9, 0.05, 0.0], [0.1, 0.8, 0.05], [-0.05, 0.1, 0.7]])
    bias = np.array([0.05, -0.02, 0.1])
    gt = render @ matrix + bias
    assert 0 <= gt.min() and gt.max() <= 1
    fit = metrics.color_fit(render, gt)
    np.testing.assert_allclose(fit[:3], matrix, atol=1e-10)
    np.testing.assert_allclose(fit[3], bias, atol=1e-10)
    assert metrics.color_corrected_psnr(render, gt) > 150
    assert metrics.psnr(render, gt) < 40
    # With a mask, the masked-out pixels (here spoilt) do not count.
    mask = np.ones(render.shape[:2], bool)
    mask[:4] = False
    spoilt = gt.copy()
    spoilt[:4] = rng.uniform(size=spoilt[:4].shape)
    assert metrics.color_corrected_psnr(render, spoilt, mask) > 150
    assert metrics.color_corrected_psnr(render, spoilt) < 40


def test_color_corrected_psnr_is_at_least_the_plain_one_and_keeps_its_order():
    rng = np.random.default_rng(1)
    gt = rng.uniform(size=(20, 20, 3))
    near = np.clip(gt + rng.normal(scale=0.02, size=gt.shape), 0, 1)
    far = np.clip(gt + rng.normal(scale=0.1, size=gt.shape), 0, 1)
    for render in (near, far):
        assert metrics.color_corrected_psnr(render, gt) >= metrics.psnr(render, gt) - 1e-6
    assert metrics.color_corrected_psnr(near, gt) > metrics.color_corrected_psnr(far, gt)


def tiny_model_config(field: str, **overrides):
    from configs import demo
    c = demo.get_config()
    c.num_prop_samples, c.num_nerf_samples = (8,), 8
    c.prop_depth, c.prop_width, c.nerf_depth, c.nerf_width = 1, 16, 2, 32
    c.bottleneck_width, c.view_width, c.max_deg_point, c.deg_view = 16, 16, 4, 2
    c.field, c.precision = field, "f32"
    c.grid_levels, c.prop_grid_levels, c.grid_table_log2, c.prop_grid_table_log2 = 4, 4, 10, 10
    c.grid_max_res, c.prop_grid_max_res = 64, 32
    for k, v in overrides.items():
        c[k] = v
    return c


def random_rays(count: int, seed: int = 0):
    from mipnerf.cameras.camera import Rays
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(count, 3)).astype(np.float32)
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    ones = np.ones((count, 1), np.float32)
    return Rays(origins=rng.normal(scale=0.1, size=(count, 3)).astype(np.float32), directions=directions,
                viewdirs=directions, radii=ones * 0.002, near=ones * 0.5, far=ones * 3.0)


@pytest.mark.parametrize("field", ["mlp", "grid"])
def test_appearance_changes_the_colour_and_never_the_density(field):
    config = tiny_model_config(field, appearance_dim=4)
    model = mipnerf360.build_model(config, num_images=3)
    nerf = model.nerf_field
    rays = random_rays(64)
    key = jax.random.PRNGKey(0)
    params = model.init(key, None, rays, 1.0, jnp.ones(3), jnp.zeros(64, jnp.int32))
    assert params["params"]["appearance"].shape == (3, 4)
    # The NeRF field itself, on the inputs of its round, with two different vectors.
    t = jnp.broadcast_to(jnp.linspace(0.5, 3.0, 9), (64, 9))
    inputs = nerf.inputs(rays, t, model.contraction, model.cylinder)
    field_params = {"params": params["params"]["nerf_grid" if field == "grid" else "nerf_mlp"]}
    a = jax.random.normal(jax.random.PRNGKey(1), (64, 4))
    b = jax.random.normal(jax.random.PRNGKey(2), (64, 4))
    density_a, rgb_a = nerf.apply(field_params, *inputs, rays.viewdirs, a)
    density_b, rgb_b = nerf.apply(field_params, *inputs, rays.viewdirs, b)
    np.testing.assert_array_equal(density_a, density_b)
    assert float(jnp.max(jnp.abs(rgb_a - rgb_b))) > 1e-3
    # Through the whole model: two training images with different vectors render the same weights.
    # The table's mean is image 0's vector, and not zero, so that the mean and a zero vector differ.
    mean = jnp.array([0.8, -0.6, 0.5, 1.0])
    table = jnp.stack([mean, mean + 1, mean - 1])
    params = jax.tree.map(lambda x: x, params)
    params["params"]["appearance"] = table
    out_0, rounds_0 = model.apply(params, None, rays, 1.0, jnp.ones(3), jnp.zeros(64, jnp.int32))
    out_1, rounds_1 = model.apply(params, None, rays, 1.0, jnp.ones(3), jnp.ones(64, jnp.int32))
    for r0, r1 in zip(rounds_0, rounds_1):
        np.testing.assert_array_equal(r0.weights, r1.weights)
    np.testing.assert_array_equal(out_0.depth, out_1.depth)
    assert float(jnp.max(jnp.abs(out_0.rgb - out_1.rgb))) > 1e-3
    # A view that is not a training image takes the mean vector (here image 0's), not a zero one
    # (image 0's colour with a zero vector in its place).
    out_mean, _ = model.apply(params, None, rays, 1.0, jnp.ones(3))
    np.testing.assert_allclose(out_mean.rgb, out_0.rgb, atol=1e-6)
    params["params"]["appearance"] = table.at[0].set(0.0)
    out_zero, _ = model.apply(params, None, rays, 1.0, jnp.ones(3), jnp.zeros(64, jnp.int32))
    assert float(jnp.max(jnp.abs(out_mean.rgb - out_zero.rgb))) > 1e-3


def test_affine_colour_transform_starts_at_identity_and_is_per_image():
    config = tiny_model_config("mlp", appearance_affine=True)
    model = mipnerf360.build_model(config, num_images=2)
    rays = random_rays(32)
    images = jnp.zeros(32, jnp.int32)
    params = model.init(jax.random.PRNGKey(0), None, rays, 1.0, jnp.ones(3), images)
    transforms = params["params"]["color_transform"]
    np.testing.assert_array_equal(transforms, np.tile(np.eye(3, 4), (2, 1, 1)))
    plain, _ = model.apply(params, None, rays, 1.0, jnp.ones(3))
    at_init, _ = model.apply(params, None, rays, 1.0, jnp.ones(3), images)
    np.testing.assert_allclose(at_init.rgb, plain.rgb, atol=1e-6)
    params["params"]["color_transform"] = transforms.at[1].set(jnp.array([[0.5, 0, 0, 0.1], [0, 1, 0, 0], [0, 0, 2, 0]]))
    moved, _ = model.apply(params, None, rays, 1.0, jnp.ones(3), jnp.ones(32, jnp.int32))
    np.testing.assert_allclose(moved.rgb, plain.rgb * jnp.array([0.5, 1, 2]) + jnp.array([0.1, 0, 0]), atol=1e-6)
    unseen, _ = model.apply(params, None, rays, 1.0, jnp.ones(3))  # the mean of the two transforms
    mean = plain.rgb * jnp.array([0.75, 1, 1.5]) + jnp.array([0.05, 0, 0])
    np.testing.assert_allclose(unseen.rgb, mean, atol=1e-6)


def test_appearance_needs_the_number_of_training_images():
    with pytest.raises(ConfigError, match="appearance"):
        mipnerf360.build_model(tiny_model_config("mlp", appearance_dim=4))


def test_training_learns_the_tables_and_renders_unseen_views_from_a_checkpoint(tiny_scene, tmp_path):
    from helpers import tiny_config
    from mipnerf import datasets
    from mipnerf.commands import train
    from mipnerf.render import rendering

    config = tiny_config(tiny_scene, tmp_path, appearance_dim=4, appearance_affine=True, max_steps=20,
                         checkpoint_every=20, lr_delay_steps=0)
    train.train(config, log=lambda s: None)
    renderer = rendering.load_renderer(config, log=lambda s: None)
    images = len(datasets.load_split(config, "train").images)
    table = np.asarray(renderer.params["params"]["appearance"])
    transforms = np.asarray(renderer.params["params"]["color_transform"])
    assert table.shape == (images, 4) and transforms.shape == (images, 3, 4)
    # Every training image's vector and transform took steps of their own.
    assert np.all(np.abs(table).max(axis=1) > 0)
    assert np.all(np.abs(transforms - np.eye(3, 4)).max(axis=(1, 2)) > 0)
    assert len(set(map(tuple, table.round(6)))) == images
    test = datasets.load_split(config, "test")
    (image,) = rendering.render_views(renderer, test.camtoworlds[:1], test.intrinsics.take(slice(1)), test.height,
                                      test.width, config, desc="test")
    assert np.all(np.isfinite(image.rgb))
