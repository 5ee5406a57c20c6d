"""Hash-grid fields: the encoding against a numpy reference, Zip-NeRF's multisamples and level
weights against their definitions, and a grid model that trains, evaluates and renders."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

from helpers import setup_training, tiny_config
from mipnerf.commands import evaluate, render
from mipnerf.model import coord, grid, mipnerf360
from mipnerf.training import distributed, update

PRIMES = (1, 2654435761, 805459861)


def reference_encoding(table: np.ndarray, x: np.ndarray, levels: grid.Levels) -> np.ndarray:
    """Trilinear interpolation of each level's vertex features, one point and corner at a time.

    Returns [N, L, F] and the table rows used, [N, L, 8] (x-fastest corner order).
    """
    out = np.zeros((len(x), len(levels.res), table.shape[1]))
    rows = np.zeros((len(x), len(levels.res), 8), np.int64)
    for n, point in enumerate(np.clip(x, 0, 1).astype(np.float64)):
        for level, (res, size, offset, dense) in enumerate(zip(*levels)):
            pos = point * res
            cell = np.minimum(np.floor(pos), res - 1).astype(np.int64)
            frac = pos - cell
            for k, (dz, dy, dx) in enumerate(itertools.product((0, 1), repeat=3)):
                vx, vy, vz = cell + (dx, dy, dz)
                if dense:
                    row = vx + (res + 1) * vy + (res + 1) ** 2 * vz
                else:
                    row = ((vx * PRIMES[0]) ^ (vy * PRIMES[1]) ^ (vz * PRIMES[2])) % 2**32 % size
                weight = ((frac[0] if dx else 1 - frac[0]) * (frac[1] if dy else 1 - frac[1])
                          * (frac[2] if dz else 1 - frac[2]))
                out[n, level] += weight * table[offset + row]
                rows[n, level, k] = offset + row
    return out, rows


@pytest.fixture
def encoding():
    enc = grid.HashEncoding(levels=6, table_log2=12, features=3, min_res=4, max_res=96)
    x = jax.random.uniform(jax.random.PRNGKey(0), (40, 3), minval=-0.05, maxval=1.05)  # a few outside, clipped
    params = enc.init(jax.random.PRNGKey(1), x)
    table = np.asarray(jax.random.normal(jax.random.PRNGKey(2), params["params"]["table"].shape))
    return enc, {"params": {"table": jnp.asarray(table)}}, np.asarray(x)


def test_encoding_equals_trilinear_interpolation_of_a_numpy_reference(encoding):
    enc, params, x = encoding
    layout = enc.layout()
    assert layout.dense.any() and not layout.dense.all()  # both kinds of level are exercised
    expected, _ = reference_encoding(np.asarray(params["params"]["table"]), x, layout)
    got = enc.apply(params, jnp.asarray(x))
    # float32 positions: x * res rounds by res * 6e-8 (up to 6e-6 at res 96), times features of a few units.
    np.testing.assert_allclose(got, expected.reshape(len(x), -1), rtol=1e-5, atol=5e-5)


def test_levels_that_fit_their_table_have_no_collisions():
    layout = grid.levels_layout(levels=8, table_log2=14, min_res=4, max_res=200)
    assert layout.dense.sum() >= 2
    for level in np.flatnonzero(layout.dense):
        res = int(layout.res[level])
        vertices = np.stack(np.meshgrid(*[np.arange(res + 1)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
        all_levels = np.broadcast_to(vertices, (len(vertices), len(layout.res), 3))
        rows = np.asarray(grid.corner_rows(jnp.asarray(all_levels, jnp.int32), layout))[0, :, level]  # corner 0
        assert len(np.unique(rows)) == (res + 1) ** 3 == layout.size[level]
        assert rows.min() == layout.offset[level] and rows.max() == layout.offset[level] + layout.size[level] - 1


def test_gradients_reach_exactly_the_eight_corners_of_each_level(encoding):
    enc, params, _ = encoding
    x = np.array([[0.31, 0.57, 0.73]])  # inside the grid: every corner has a weight > 0
    _, rows = reference_encoding(np.asarray(params["params"]["table"]), x, enc.layout())
    grads = jax.grad(lambda p: jnp.sum(enc.apply(p, jnp.asarray(x))))(params)["params"]["table"]
    touched = set(np.flatnonzero(np.any(np.asarray(grads) != 0, axis=-1)))
    assert touched == set(rows.ravel())
    assert len(touched) == 8 * len(enc.layout().res)  # no collisions among one point's corners here


def test_points_outside_the_box_take_the_features_of_the_nearest_point_of_its_surface(encoding):
    enc, params, _ = encoding
    outside = np.array([[-0.5, 0.3, 0.6], [1.7, 1.2, -3.0], [0.4, 0.5, 2.0]], np.float32)
    scale = np.full(len(outside), 0.01, np.float32)
    got = np.asarray(enc.apply(params, outside, scale))
    np.testing.assert_array_equal(got, enc.apply(params, np.clip(outside, 0, 1), scale))
    assert np.all(np.abs(got).max(axis=-1) > 0.1)  # features, not empty space


def test_multisamples_have_the_frustum_gaussians_mean_and_covariance():
    rng = np.random.default_rng(0)
    origins = rng.normal(size=(8, 3)).astype(np.float32)
    directions = (rng.normal(size=(8, 3)) * rng.uniform(0.5, 2, (8, 1))).astype(np.float32)  # not unit length
    t = np.sort(rng.uniform(0.5, 4, (8, 6)), axis=-1).astype(np.float32)
    radii = rng.uniform(0.005, 0.05, (8, 1)).astype(np.float32)
    for cylinder in (False, True):
        points, scales = coord.frustum_multisamples(origins, directions, t[:, :-1], t[:, 1:], radii, cylinder)
        moments = coord.cylinder_moments if cylinder else coord.frustum_moments
        mean, cov = coord.lift_gaussian(directions, *moments(t[:, :-1], t[:, 1:], radii), diag=False)
        centred = np.asarray(points) - np.mean(points, axis=-2, keepdims=True)
        sample_cov = np.einsum("...ji,...jk->...ik", centred, centred) / points.shape[-2]
        np.testing.assert_allclose(np.mean(points, axis=-2), mean + origins[:, None], atol=1e-5)
        np.testing.assert_allclose(sample_cov, cov, atol=1e-5 * np.abs(cov).max())
        np.testing.assert_allclose(scales ** 2, np.broadcast_to(moments(t[:, :-1], t[:, 1:], radii)[2][..., None],
                                                                scales.shape), rtol=1e-5)
    one, _ = coord.frustum_multisamples(origins, directions, t[:, :-1], t[:, 1:], radii, cylinder, count=1)
    np.testing.assert_allclose(one[..., 0, :], np.mean(points, axis=-2), atol=1e-5)  # the mean alone


def test_level_weights_keep_coarse_cells_and_fade_fine_ones():
    layout = grid.levels_layout(levels=10, table_log2=16, min_res=8, max_res=4096)
    weights = np.asarray(grid.level_weights(jnp.asarray([1e-5, 1e-3]), layout))  # [2, L]
    assert np.all(np.diff(weights, axis=-1) <= 0)  # finer levels never weigh more
    np.testing.assert_allclose(weights[0], 1.0, atol=1e-3)  # every cell far larger than the Gaussian
    coarse, fine = layout.res * 1e-3 < 0.05, layout.res * 1e-3 > 2
    assert np.all(weights[1][coarse] > 0.99) and np.all(weights[1][fine] < 0.2)
    assert coarse.any() and fine.any()


def test_contraction_scales_points_by_the_cube_root_of_its_jacobian_determinant():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(20, 3)) * 3)
    dets = jnp.abs(jax.vmap(lambda p: jnp.linalg.det(jax.jacfwd(coord.contract)(p)))(x))
    np.testing.assert_allclose(coord.contract_volume_scale(x), dets ** (1 / 3), rtol=1e-4)


def test_encoding_scales_each_level_by_erf_of_its_cells_against_the_points_scale(encoding):
    enc, params, x = encoding
    scale = np.random.default_rng(3).uniform(1e-4, 0.05, len(x)).astype(np.float32)
    plain = np.asarray(enc.apply(params, x)).reshape(len(x), enc.levels, enc.features)
    scaled = np.asarray(enc.apply(params, x, scale)).reshape(len(x), enc.levels, enc.features)
    growth = (enc.max_res / enc.min_res) ** (1 / (enc.levels - 1))
    res = np.floor(enc.min_res * growth ** np.arange(enc.levels) + 1e-6)
    weight = scipy.special.erf(1 / np.sqrt(8 * (scale[:, None] * res) ** 2))  # [N, L]
    np.testing.assert_allclose(scaled, plain * weight[..., None], rtol=1e-5, atol=1e-7)


def test_grid_inputs_contract_and_normalise_into_the_grids_box():
    rng = np.random.default_rng(4)
    dirs = rng.normal(size=(8, 3))
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    origins = rng.uniform(-0.2, 0.2, (8, 3))
    t = np.array([0.3, 0.5, 0.9, 2.0, 3.0, 6.0]) * np.ones((8, 1))  # inside and outside the unit ball
    radii = np.full((8, 1), 2e-3)
    args = [jnp.asarray(a, jnp.float32) for a in (origins, dirs, t, radii)]
    bound = 1.3
    box_points, box_scales = (np.asarray(a, np.float64) for a in grid.grid_inputs(*args, False, bound))
    points, scales = box_points * 2 * bound - bound, box_scales * 2 * bound  # back to world units
    r = np.linalg.norm(points, axis=-1, keepdims=True)
    contracted = np.where(r <= 1, points, (2 - 1 / r) * points / r)
    volume = np.where(r[..., 0] <= 1, 1.0, np.cbrt((2 * r[..., 0] - 1) ** 2 / r[..., 0] ** 6))
    got_points, got_scales = grid.grid_inputs(*args, True, bound)
    np.testing.assert_allclose(got_points, (contracted + 2) / 4, atol=2e-6)
    np.testing.assert_allclose(got_scales, scales * volume / 4, rtol=2e-5)
    assert np.all((np.asarray(got_points) > 0) & (np.asarray(got_points) < 1))
    depth = np.einsum("rsk,rk->rs", points.mean(axis=-2) - origins[:, None], dirs)  # multisamples' mean
    assert np.all((depth > t[:, :-1]) & (depth < t[:, 1:]))  # lies within its interval


def test_grid_decay_is_its_multiple_of_the_sum_over_levels_of_each_levels_mean_square(tiny_scene, tmp_path):
    config = grid_config(tiny_scene, tmp_path)
    model = mipnerf360.build_model(config)
    params = update.create_train_state(config, model, distributed.make_mesh())[0].params
    expected, tables = 0.0, {}
    for name, levels, table_log2, min_res, max_res in (
            ("prop_grid", config.prop_grid_levels, config.prop_grid_table_log2, config.grid_min_res,
             config.prop_grid_max_res),
            ("nerf_grid", config.grid_levels, config.grid_table_log2, config.grid_min_res, config.grid_max_res)):
        table = np.asarray(params["params"][name]["encoding"]["table"], np.float64)
        table = np.random.default_rng(len(name)).normal(size=table.shape) * np.linspace(0.1, 2, len(table))[:, None]
        growth = (max_res / min_res) ** (1 / (levels - 1))
        start = 0
        for level in range(levels):
            res = int(np.floor(min_res * growth ** level + 1e-6))
            size = min((res + 1) ** 3, 2 ** table_log2)
            expected += np.mean(table[start:start + size] ** 2)
            start += size
        assert start == len(table)
        tables[name] = table
    params = jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.asarray(tables[path[1].key], jnp.float32) if path[-1].key == "table" else x, params)
    np.testing.assert_allclose(float(mipnerf360.weight_decay(model, params)), config.grid_decay_mult * expected, rtol=1e-5)


def grid_config(scene, exp_dir, **overrides):
    grid_fields = dict(field="grid", grid_levels=6, grid_table_log2=12, grid_min_res=4, grid_max_res=64,
                       prop_grid_levels=3, prop_grid_table_log2=10, prop_grid_max_res=16, grid_width=32,
                       bottleneck_width=15, view_depth=1, lr_init=1e-2, lr_final=1e-3, adam_beta2=0.99, adam_eps=1e-15,
                       grad_max_norm=0.0, grid_bound=1.3)
    return tiny_config(scene, exp_dir, **dict(grid_fields, **overrides))


def training_psnr(config, steps):
    t = setup_training(config)
    step = update.make_train_step(config, t.model, t.tx, t.mesh)
    state, history = t.state, []
    for _ in range(steps):
        state, stats = step(state, t.data)
        history.append(float(stats["psnr"]))
    return np.convolve(history, np.ones(10) / 10, mode="valid"), state  # a 10-step running mean


def steps_to_gain(psnr, gain):
    reached = np.flatnonzero(psnr >= psnr[0] + gain)
    return int(reached[0]) if len(reached) else len(psnr)


def test_grid_field_learns_the_scene_in_fewer_steps_than_the_mlp(tiny_scene, tmp_path):
    steps = 200
    grid_psnr, _ = training_psnr(grid_config(tiny_scene, tmp_path, max_steps=steps), steps)
    mlp_psnr, _ = training_psnr(tiny_config(tiny_scene, tmp_path, max_steps=steps), steps)
    assert grid_psnr[-1] > grid_psnr[0] + 8, (grid_psnr[0], grid_psnr[-1])
    assert steps_to_gain(grid_psnr, 8) < steps_to_gain(mlp_psnr, 8), (grid_psnr[::20], mlp_psnr[::20])


def test_a_grid_run_trains_evaluates_and_renders(tiny_scene, tmp_path):
    from mipnerf.commands import train

    config = grid_config(tiny_scene, tmp_path, max_steps=30, checkpoint_every=30, contraction=True, grid_bound=1.5,
                         grid_multisamples=6, render_frames=3)
    train.train(config, log=lambda s: None)
    assert evaluate.evaluate(config, log=lambda s: None)["step"] == 30
    assert all(p.stat().st_size > 0 for p in render.render_video(config, log=lambda s: None))
