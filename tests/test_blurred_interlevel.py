"""Zip-NeRF's blurred resampling and its interlevel loss against brute-force references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mipnerf.model import stepfun
from test_stepfun import brute_force_distortion, random_stepfun


def brute_blurred_weights(t_query, t, w, radius, n=200_000):
    """The step function's density convolved with a box of half-width `radius`, sampled densely on
    a fine grid and integrated numerically (midpoint rule) over each query interval."""
    lo, hi = min(t[0], t_query[0]) - 2 * radius, max(t[-1], t_query[-1]) + 2 * radius
    x = lo + (np.arange(n) + 0.5) * (hi - lo) / n
    dx = (hi - lo) / n
    cdf = lambda u: np.interp(u, t, np.concatenate([[0.0], np.cumsum(w)]))
    blurred_density = (cdf(x + radius) - cdf(x - radius)) / (2 * radius)
    return np.array([np.sum(blurred_density[(x >= a) & (x < b)]) * dx for a, b in zip(t_query[:-1], t_query[1:])])


@pytest.mark.parametrize("radius", [0.003, 0.03, 0.2])
def test_blur_and_resample_matches_a_dense_numerical_integral(radius):
    rng = np.random.default_rng(0)
    t, w = random_stepfun(rng, 3, 24, zero_frac=0.3)
    t_query, _ = random_stepfun(rng, 3, 10)
    got = np.asarray(stepfun.blur_and_resample(jnp.array(t_query), jnp.array(t), jnp.array(w), radius))
    for r in range(3):
        expected = brute_blurred_weights(t_query[r].astype(np.float64), t[r].astype(np.float64), w[r], radius)
        np.testing.assert_allclose(got[r], expected, atol=2e-4)


def test_blur_keeps_the_mass_inside_and_is_smooth_in_the_nerf_intervals():
    rng = np.random.default_rng(1)
    t, w = random_stepfun(rng, 2, 16)
    t = 0.25 + 0.5 * t  # well inside [0, 1], so that no mass is blurred past the ends
    grid = jnp.broadcast_to(jnp.linspace(0.0, 1.0, 65), (2, 65))
    blurred = stepfun.blur_and_resample(grid, jnp.array(t), jnp.array(w), 0.03)
    np.testing.assert_allclose(np.sum(blurred, -1), np.sum(w, -1), atol=1e-5)
    # A tiny shift of the NeRF intervals moves the blurred weights by about as little (no jumps).
    shifted = stepfun.blur_and_resample(grid, jnp.array(t) + 1e-4, jnp.array(w), 0.03)
    assert float(jnp.max(jnp.abs(shifted - blurred))) < 2e-3


def test_blurred_loss_is_zero_when_the_proposal_bounds_and_only_trains_the_proposal():
    rng = np.random.default_rng(2)
    t, w = map(jnp.array, random_stepfun(rng, 4, 32))
    t_env, w_env = map(jnp.array, random_stepfun(rng, 4, 8))
    radius = 0.03
    bound = stepfun.blur_and_resample(t_env, t, w, radius)
    np.testing.assert_allclose(stepfun.blurred_interlevel_loss(t, w, t_env, bound, radius), 0.0, atol=1e-6)
    np.testing.assert_allclose(stepfun.blurred_interlevel_loss(t, w, t_env, 2 * bound + 0.01, radius), 0.0, atol=0)
    loss = lambda t, w, t_env, w_env: jnp.sum(stepfun.blurred_interlevel_loss(t, w, t_env, w_env, radius))
    assert loss(t, w, t_env, w_env) > 0
    grads = jax.grad(loss, argnums=(0, 1, 2, 3))(t, w, t_env, w_env)
    assert all(np.all(np.asarray(g) == 0) for g in grads[:3])
    assert np.any(np.asarray(grads[3]) != 0) and np.all(np.isfinite(grads[3]))
    # A too-small proposal weight is penalised by its excess over the blurred NeRF weight.
    low = bound.at[:, 3].set(0.5 * bound[:, 3])
    expected = (0.5 * bound[:, 3]) ** 2 / (0.5 * bound[:, 3] + jnp.finfo(jnp.float32).eps) / 8
    np.testing.assert_allclose(stepfun.blurred_interlevel_loss(t, w, t_env, low, radius), expected, rtol=1e-3)


def test_distortion_on_a_curved_distance_matches_the_double_integral():
    from mipnerf.model import coord

    rng = np.random.default_rng(3)
    t, w = random_stepfun(rng, 3, 12, zero_frac=0.3)
    metric = 0.2 * t / (1.001 - t)  # metric distances out to 200
    curved = np.asarray(coord.power_ladder(jnp.array(metric), -0.25, 1e4))
    got = np.asarray(stepfun.distortion_loss(jnp.array(curved), jnp.array(w)))
    for r in range(3):
        c64 = 1.25 / -0.25 * ((1e4 * metric[r].astype(np.float64) / 1.25 + 1) ** -0.25 - 1)
        np.testing.assert_allclose(got[r], brute_force_distortion(c64, w[r]), rtol=1e-3)
