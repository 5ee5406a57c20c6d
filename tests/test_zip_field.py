"""Zip-NeRF's field pieces: each setting reaches the parameters or the outputs as its definition
says, today's defaults keep today's parameters, and a model with every piece on trains."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

from helpers import tiny_config
from mipnerf.model import grid, mipnerf360
from test_grid import grid_config, training_psnr

ZIP_PIECES = dict(prop_grid_round_max_res=(8, 16), prop_grid_features=1, grid_features=4, grid_table_scale=10.0,
                  grid_append_scale=True, view_depth=3, view_width=16, view_skip_layer=2, bottleneck_width=24,
                  density_activation="exp", num_prop_samples=(16, 16), interlevel_loss="blurred",
                  interlevel_loss_mult=0.01, dilation_multiplier=0.0, distortion_distance="power_ladder",
                  distortion_loss_mult=0.01, ray_spacing="power_ladder", near=0.0)


def shapes(config):
    model = mipnerf360.build_model(config)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), *mipnerf360.init_args(config, jax.random.PRNGKey(1)))
    return {"/".join(k): v.shape for k, v in flax.traverse_util.flatten_dict(variables["params"]).items()}


def table_rows(levels, table_log2, min_res, max_res):
    return int(grid.levels_layout(levels, table_log2, min_res, max_res).size.sum())


def test_every_field_size_reaches_the_parameters(tiny_scene, tmp_path):
    c = grid_config(tiny_scene, tmp_path, **ZIP_PIECES)
    got = shapes(c)
    assert not any(k.startswith("prop_grid/") for k in got)  # one grid per proposal round, none shared
    for i, max_res in enumerate((8, 16)):
        levels = grid.octave_levels(c.grid_min_res, max_res)
        assert levels == 1 + round(np.log2(max_res / c.grid_min_res))
        assert got[f"prop_grid_{i}/encoding/table"] == (table_rows(levels, c.prop_grid_table_log2, c.grid_min_res,
                                                                   max_res), 1)
        assert got[f"prop_grid_{i}/layer_0/kernel"] == (levels * (1 + 1), c.grid_width)  # a scale feature a level
    assert got["nerf_grid/encoding/table"] == (table_rows(c.grid_levels, c.grid_table_log2, c.grid_min_res,
                                                          c.grid_max_res), 4)
    assert got["nerf_grid/layer_0/kernel"] == (c.grid_levels * (4 + 1), c.grid_width)
    view_inputs = 24 + 3 + 2 * 3 * c.deg_view  # bottleneck, direction, its encoding
    assert got["nerf_grid/view_layer_0/kernel"] == (view_inputs, 16)
    assert got["nerf_grid/view_layer_2/kernel"] == (16, 16)
    assert got["nerf_grid/rgb/kernel"] == (16 + view_inputs, 3)  # the skip before the last layer


def test_the_defaults_keep_the_parameters_of_earlier_runs(tiny_scene, tmp_path):
    """Checkpoints of runs made before these settings existed restore: with every new setting at its
    default, the parameter names and shapes are those the earlier model had."""
    c = grid_config(tiny_scene, tmp_path)
    got = shapes(c)
    layers = lambda name, ins: {f"{name}/layer_0/kernel": (ins, c.grid_width), f"{name}/layer_0/bias": (c.grid_width,),
                                f"{name}/density/kernel": (c.grid_width, 1), f"{name}/density/bias": (1,)}
    expected = {"prop_grid/encoding/table": (table_rows(c.prop_grid_levels, c.prop_grid_table_log2, c.grid_min_res,
                                                        c.prop_grid_max_res), c.grid_features),
                "nerf_grid/encoding/table": (table_rows(c.grid_levels, c.grid_table_log2, c.grid_min_res,
                                                        c.grid_max_res), c.grid_features),
                **layers("prop_grid", c.prop_grid_levels * c.grid_features),
                **layers("nerf_grid", c.grid_levels * c.grid_features),
                "nerf_grid/bottleneck/kernel": (c.grid_width, c.bottleneck_width),
                "nerf_grid/bottleneck/bias": (c.bottleneck_width,),
                "nerf_grid/view_layer_0/kernel": (c.bottleneck_width + 3 + 6 * c.deg_view, c.view_width),
                "nerf_grid/view_layer_0/bias": (c.view_width,),
                "nerf_grid/rgb/kernel": (c.view_width, 3), "nerf_grid/rgb/bias": (3,)}
    assert got == expected
    mlp = shapes(tiny_config(tiny_scene, tmp_path))
    assert sorted({k.split("/")[0] for k in mlp}) == ["nerf_mlp", "prop_mlp"]
    assert mlp["nerf_mlp/rgb/kernel"] == (c.view_width, 3)


def test_table_scale_stores_the_features_divided_and_multiplies_them_back():
    x = jax.random.uniform(jax.random.PRNGKey(0), (50, 3))
    scale = jax.random.uniform(jax.random.PRNGKey(1), (50,), minval=1e-3, maxval=0.1)
    plain, scaled = grid.HashEncoding(4, 10, 2, 4, 32), grid.HashEncoding(4, 10, 2, 4, 32, table_scale=10.0)
    stored = scaled.init(jax.random.PRNGKey(2), x, scale)
    assert float(jnp.max(jnp.abs(stored["params"]["table"]))) <= 1e-5  # features start in +-1e-4
    table = jax.random.normal(jax.random.PRNGKey(3), stored["params"]["table"].shape)
    np.testing.assert_allclose(scaled.apply({"params": {"table": table / 10}}, x, scale),
                               plain.apply({"params": {"table": table}}, x, scale), rtol=1e-5, atol=1e-6)


def test_the_scale_feature_is_each_levels_weight_times_its_rms_entry():
    enc = grid.HashEncoding(3, 10, 2, 4, 16, table_scale=10.0, append_scale=True)
    x = jax.random.uniform(jax.random.PRNGKey(0), (20, 3))
    scale = jax.random.uniform(jax.random.PRNGKey(1), (20,), minval=1e-3, maxval=0.2)
    table = jax.random.normal(jax.random.PRNGKey(2), enc.init(jax.random.PRNGKey(3), x, scale)["params"]["table"].shape)
    out = np.asarray(enc.apply({"params": {"table": table}}, x, scale)).reshape(20, 3, 3)
    layout = enc.layout()
    for level, (offset, size, res) in enumerate(zip(layout.offset, layout.size, layout.res)):
        weight = scipy.special.erf(1 / np.sqrt(8 * (np.asarray(scale, np.float64) * res) ** 2))
        rms = np.sqrt(1e-10 + np.mean(np.asarray(table[offset:offset + size], np.float64) ** 2))
        np.testing.assert_allclose(out[:, level, 2], 10 * (2 * weight - 1) * rms, rtol=1e-4, atol=1e-6)
    # No gradient reaches the table through the scale feature.
    grads = jax.grad(lambda t: jnp.sum(enc.apply({"params": {"table": t}}, x, scale).reshape(20, 3, 3)[..., 2]))(table)
    assert float(jnp.max(jnp.abs(grads))) == 0.0


def test_exp_density_is_the_exponential_of_what_softplus_sees(tiny_scene, tmp_path):
    points = jax.random.uniform(jax.random.PRNGKey(0), (4, 5, 1, 3))
    scales = jnp.full((4, 5, 1), 0.01)
    build = lambda activation: mipnerf360.build_model(grid_config(tiny_scene, tmp_path, density_activation=activation))
    soft, exp = build("softplus").prop_fields[0], build("exp").prop_fields[0]
    params = soft.init(jax.random.PRNGKey(1), points, scales)
    d_soft, _ = soft.apply(params, points, scales)
    d_exp, _ = exp.apply(params, points, scales)
    raw = np.log(np.expm1(np.asarray(d_soft, np.float64)))  # softplus^-1
    np.testing.assert_allclose(np.log(np.asarray(d_exp, np.float64)), raw, rtol=1e-4, atol=1e-4)


def test_random_background_draws_a_colour_per_training_ray_and_grey_outside_training(tiny_scene, tmp_path):
    c = tiny_config(tiny_scene, tmp_path, background="random", white_background=False)
    colours = np.asarray(mipnerf360.training_background(c, jax.random.PRNGKey(0), 4096))
    assert colours.shape == (4096, 3) and colours.min() >= 0 and colours.max() <= 1
    np.testing.assert_allclose(colours.mean(0), 0.5, atol=0.02)
    assert np.std(colours[:, 0]) > 0.25
    np.testing.assert_array_equal(mipnerf360.background_color(c), [0.5, 0.5, 0.5])
    fixed = tiny_config(tiny_scene, tmp_path, white_background=False)
    np.testing.assert_array_equal(mipnerf360.training_background(fixed, jax.random.PRNGKey(0), 2), np.zeros((2, 3)))


def test_a_grid_model_with_every_zip_piece_on_trains(tiny_scene, tmp_path):
    psnr, state = training_psnr(grid_config(tiny_scene, tmp_path, max_steps=200, **ZIP_PIECES), 200)
    assert psnr[-1] > psnr[0] + 8, (psnr[0], psnr[-1])
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(state.params))


def test_turned_multisamples_keep_the_frustums_mean_and_covariance():
    from mipnerf.model import coord

    rng = np.random.default_rng(0)
    origins, dirs = jnp.asarray(rng.normal(size=(2, 3))), jnp.asarray(rng.normal(size=(2, 3)))
    t = jnp.asarray(np.sort(rng.uniform(1, 4, size=(2, 9)), -1))
    radii = jnp.full((2, 1), 0.05)
    plain, _ = coord.frustum_multisamples(origins, dirs, t[:, :-1], t[:, 1:], radii)
    for rotation in (coord.multisample_rotation((2, 8), jax.random.PRNGKey(3)), coord.multisample_rotation((2, 8))):
        turned, scales = coord.frustum_multisamples(origins, dirs, t[:, :-1], t[:, 1:], radii, rotation=rotation,
                                                    scale_mult=0.5)
        np.testing.assert_allclose(turned.mean(-2), plain.mean(-2), atol=1e-5)
        centred = lambda p: p - p.mean(-2, keepdims=True)
        cov = lambda p: jnp.einsum("...ki,...kj->...ij", centred(p), centred(p))
        np.testing.assert_allclose(cov(turned), cov(plain), atol=1e-5)
        assert float(jnp.max(jnp.abs(turned - plain))) > 1e-3  # the points did move
        np.testing.assert_allclose(scales, 0.5 * coord.frustum_multisamples(
            origins, dirs, t[:, :-1], t[:, 1:], radii)[1], rtol=1e-6)
    angle, reverse = coord.multisample_rotation((2, 8))  # evaluation: every other interval turned and reversed
    np.testing.assert_allclose(angle[0], np.tile([0, np.pi / 6], 4), rtol=1e-6)
    np.testing.assert_array_equal(reverse[1], np.tile([False, True], 4))


def test_each_ray_draws_its_own_turns(tiny_scene, tmp_path):
    """A ray's multisamples do not depend on the other rays of its batch (micro-batches see what
    the whole batch does), and differ from ray to ray."""
    c = grid_config(tiny_scene, tmp_path, grid_multisample_rotation=True, grid_multisamples=6)
    field = mipnerf360.build_model(c).nerf_field
    from mipnerf.cameras.camera import Rays

    n = 6
    d = jnp.tile(jnp.array([[0.0, 0.0, -1.0]]), (n, 1))
    rays = Rays(jnp.zeros((n, 3)), d, d, jnp.full((n, 1), 0.01), jnp.full((n, 1), 2.0), jnp.full((n, 1), 6.0))
    t = jnp.tile(jnp.linspace(2.0, 6.0, 5), (n, 1))
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    whole, _ = field.inputs(rays, t, False, False, keys)
    part, _ = field.inputs(jax.tree.map(lambda x: x[2:4], rays), t[2:4], False, False, keys[2:4])
    np.testing.assert_array_equal(part, whole[2:4])
    assert float(jnp.max(jnp.abs(whole[0] - whole[1]))) > 1e-4
