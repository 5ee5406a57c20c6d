"""Conical-frustum Gaussians and IPE against Monte-Carlo references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mipnerf.model import coord


def sample_frustum(rng, d, t0, t1, radius, n):
    """Points uniform in the volume of the cone frustum {t in [t0, t1], offset < radius * t}."""
    # Cross-section area grows as t^2, so t has density proportional to t^2 on [t0, t1].
    t = np.cbrt(t0**3 + rng.uniform(size=n) * (t1**3 - t0**3))
    r = radius * t * np.sqrt(rng.uniform(size=n))
    phi = rng.uniform(0, 2 * np.pi, size=n)
    axis = d / np.linalg.norm(d)
    u = np.cross(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    return t[:, None] * d + (r * np.cos(phi))[:, None] * u + (r * np.sin(phi))[:, None] * v


@pytest.mark.parametrize("t0,t1,radius", [(2.0, 2.5, 0.01), (1.0, 3.0, 0.2), (0.1, 4.0, 0.5)])
def test_frustum_gaussian_matches_monte_carlo(t0, t1, radius):
    rng = np.random.default_rng(0)
    d = np.array([0.3, -0.8, 1.4])  # not unit length: distances are in its units
    pts = sample_frustum(rng, d, t0, t1, radius, 2_000_000)
    mean, cov = coord.conical_frustum_to_gaussian(
        jnp.array(d, jnp.float32), jnp.array([t0]), jnp.array([t1]), jnp.array([radius]), diag=False
    )
    mc_cov = np.cov(pts.T)
    scale = np.max(np.abs(mc_cov))
    np.testing.assert_allclose(mean[0], pts.mean(0), atol=3e-3 * np.linalg.norm(d) * t1)
    np.testing.assert_allclose(cov[0], mc_cov, atol=1e-2 * scale)
    _, cov_diag = coord.conical_frustum_to_gaussian(
        jnp.array(d, jnp.float32), jnp.array([t0]), jnp.array([t1]), jnp.array([radius]), diag=True
    )
    np.testing.assert_allclose(cov_diag[0], np.diag(cov[0]), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("t0,t1,radius", [(2.0, 2.5, 0.01), (1.0, 3.0, 0.2), (0.1, 4.0, 0.5)])
def test_frustum_moments_match_monte_carlo_in_the_ray_frame(t0, t1, radius):
    rng = np.random.default_rng(2)
    d = np.array([0.0, 0.0, 1.0])
    pts = sample_frustum(rng, d, t0, t1, radius, 2_000_000)
    t_mean, t_var, r_var = coord.frustum_moments(jnp.array(t0), jnp.array(t1), jnp.array(radius))
    np.testing.assert_allclose(t_mean, pts[:, 2].mean(), rtol=1e-3)
    np.testing.assert_allclose(t_var, pts[:, 2].var(), rtol=1e-2)
    np.testing.assert_allclose(r_var, pts[:, :2].var(0), rtol=1e-2)


def test_frustum_gaussian_is_stable_for_narrow_far_intervals():
    t0 = jnp.array([1000.0])
    mean, var = coord.conical_frustum_to_gaussian(jnp.array([0.0, 0.0, 1.0]), t0, t0 + 1e-3, jnp.array([1e-3]))
    assert np.all(np.isfinite(mean)) and np.all(np.asarray(var) >= 0)
    # Along the axis, a thin slab is almost uniform: variance (width^2)/12.
    np.testing.assert_allclose(var[0, 2], 1e-6 / 12, rtol=0.05)


def test_integrated_pos_enc_matches_monte_carlo():
    rng = np.random.default_rng(1)
    mean = np.array([0.3, -1.2, 0.7])
    var = np.array([0.01, 0.002, 0.05])
    x = mean + np.sqrt(var) * rng.standard_normal((1_000_000, 3))
    min_deg, max_deg = 0, 5
    scales = 2.0 ** np.arange(min_deg, max_deg)
    scaled = (x[:, None, :] * scales[:, None]).reshape(len(x), -1)
    expected = np.concatenate([np.sin(scaled).mean(0), np.cos(scaled).mean(0)])
    got = coord.integrated_pos_enc(jnp.array(mean, jnp.float32), jnp.array(var, jnp.float32), min_deg, max_deg)
    assert got.shape == (2 * 3 * (max_deg - min_deg),)
    np.testing.assert_allclose(got, expected, atol=4e-3)


def test_integrated_pos_enc_with_zero_variance_is_pos_enc():
    x = jnp.array([[0.1, 0.5, -0.3], [1.0, 2.0, 3.0]])
    ipe = coord.integrated_pos_enc(x, jnp.zeros_like(x), 0, 4)
    pe = coord.pos_enc(x, 0, 4, append_identity=False)
    np.testing.assert_allclose(ipe, pe, atol=1e-6)
    with_identity = coord.pos_enc(x, 0, 4)
    np.testing.assert_allclose(with_identity[:, :3], x)
    assert with_identity.shape == (2, 3 + 2 * 3 * 4)


def test_ipe_gradients_are_finite_for_zero_width_intervals():
    def f(t1):
        mean, var = coord.conical_frustum_to_gaussian(jnp.array([0.0, 0.6, 0.8]), jnp.array([2.0]), t1, jnp.array([0.0]))
        return jnp.sum(coord.integrated_pos_enc(mean, var, 0, 8))

    g = jax.grad(f)(jnp.array([2.0]))
    assert np.all(np.isfinite(g))
