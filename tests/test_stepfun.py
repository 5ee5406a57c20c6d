"""Step-function sampling and losses against numpy and brute-force references."""

import jax
import jax.numpy as jnp
import numpy as np

from mipnerf.model import stepfun


def random_stepfun(rng, rays, n, zero_frac=0.0):
    t = np.sort(rng.uniform(0, 1, size=(rays, n + 1)), axis=-1)
    t[:, 0], t[:, -1] = 0.0, 1.0
    w = rng.uniform(0.01, 1, size=(rays, n)) * (rng.uniform(size=(rays, n)) >= zero_frac)
    w[:, n // 2] += 0.1  # every ray has some weight
    return t.astype(np.float32), (w / w.sum(-1, keepdims=True)).astype(np.float32)


def step_cdf(x, t, w):
    """The CDF of one ray's step function at x, by numpy."""
    return np.interp(x, t, np.concatenate([[0.0], np.cumsum(w)]))


def test_invert_cdf_matches_numpy_interp():
    rng = np.random.default_rng(0)
    t, w = random_stepfun(rng, 16, 12)
    u = rng.uniform(size=(16, 50)).astype(np.float32)
    got = stepfun.invert_cdf(jnp.array(u), jnp.array(t), jnp.array(w))
    cdf = np.concatenate([np.zeros((16, 1)), np.cumsum(w, -1)], -1)
    expected = np.stack([np.interp(u[i], cdf[i], t[i]) for i in range(16)])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_random_samples_follow_the_cdf_kolmogorov_smirnov():
    rng = np.random.default_rng(1)
    t, w = random_stepfun(rng, 1, 20, zero_frac=0.3)
    n = 20000
    u = jax.random.uniform(jax.random.PRNGKey(0), (1, n))
    x = np.sort(np.asarray(stepfun.invert_cdf(u, jnp.array(t), jnp.array(w)))[0])
    model = step_cdf(x, t[0], w[0])
    ks = np.max(np.maximum(np.arange(1, n + 1) / n - model, model - np.arange(n) / n))
    assert ks < 1.63 / np.sqrt(n)  # 1% critical value
    # No sample lands inside an interval without weight.
    idx = np.clip(np.searchsorted(t[0], x, side="right") - 1, 0, 19)
    assert np.all(w[0][idx] > 0)


def test_stratified_samples_one_per_stratum_and_deterministic_centres():
    rng = np.random.default_rng(2)
    t, w = random_stepfun(rng, 8, 10)
    m = 32
    x = np.asarray(stepfun.sample(jax.random.uniform(jax.random.PRNGKey(3), (8, 1)), jnp.array(t), jnp.array(w), m))
    for i in range(8):
        q = step_cdf(x[i], t[i], w[i])
        k = np.arange(m)
        assert np.all(q >= k / m - 1e-5) and np.all(q <= (k + 1) / m + 1e-5)
        # A single jitter per ray: the offset within the stratum is the same for every sample.
        np.testing.assert_allclose(q * m - k, (q * m - k)[0], atol=1e-3)
    x_det = np.asarray(stepfun.sample(None, jnp.array(t), jnp.array(w), m))
    np.testing.assert_allclose(step_cdf(x_det[0], t[0], w[0]), (np.arange(m) + 0.5) / m, atol=1e-5)
    assert np.array_equal(x_det, np.asarray(stepfun.sample(None, jnp.array(t), jnp.array(w), m)))


def test_sampling_a_single_interval_is_uniform():
    t, w = jnp.array([[2.0, 6.0]]), jnp.array([[1.0]])
    np.testing.assert_allclose(stepfun.integrate_weights(w), [[0.0, 1.0]])
    np.testing.assert_allclose(stepfun.sample(None, t, w, 4), [[2.5, 3.5, 4.5, 5.5]], rtol=1e-6)
    np.testing.assert_allclose(stepfun.sample_intervals(None, t, w, 4, domain=(2.0, 6.0)), [[2.0, 3.0, 4.0, 5.0, 6.0]], rtol=1e-6)


def test_sample_intervals_are_sorted_and_inside_the_domain():
    rng = np.random.default_rng(3)
    t, w = random_stepfun(rng, 8, 10, zero_frac=0.4)
    s = np.asarray(stepfun.sample_intervals(jax.random.uniform(jax.random.PRNGKey(0), (8, 1)), jnp.array(t), jnp.array(w), 17,
                                            domain=(0.0, 1.0)))
    assert s.shape == (8, 18)
    assert np.all(np.diff(s, axis=-1) >= 0) and s.min() >= 0 and s.max() <= 1


def test_outer_measure_matches_brute_force_and_bounds_the_mass():
    rng = np.random.default_rng(4)
    t_env, w_env = random_stepfun(rng, 4, 9)
    t, _ = random_stepfun(rng, 4, 13)
    outer = np.asarray(stepfun.outer_measure(jnp.array(t), jnp.array(t_env), jnp.array(w_env)))
    for r in range(4):
        for i in range(13):
            a, b = t[r, i], t[r, i + 1]
            overlap = (t_env[r, :-1] < b) & (t_env[r, 1:] > a)
            np.testing.assert_allclose(outer[r, i], w_env[r][overlap].sum(), atol=1e-6)
            mass = step_cdf(b, t_env[r], w_env[r]) - step_cdf(a, t_env[r], w_env[r])
            assert outer[r, i] >= mass - 1e-6
    # Querying with the envelope's own intervals gives back its weights.
    same = stepfun.outer_measure(jnp.array(t_env), jnp.array(t_env), jnp.array(w_env))
    np.testing.assert_allclose(same, w_env, atol=1e-6)


def test_interlevel_loss_is_zero_when_bounded_and_only_trains_the_proposal():
    rng = np.random.default_rng(5)
    t, w = random_stepfun(rng, 4, 16)
    t, w = jnp.array(t), jnp.array(w)
    np.testing.assert_allclose(stepfun.interlevel_loss(t, w, t, w), 0.0, atol=1e-7)
    t_env, w_env = map(jnp.array, random_stepfun(rng, 4, 8))
    loss = lambda w, w_env: jnp.sum(stepfun.interlevel_loss(t, w, t_env, w_env))
    assert loss(w, w_env) > 0
    g_nerf, g_prop = jax.grad(loss, argnums=(0, 1))(w, w_env)
    assert np.all(np.asarray(g_nerf) == 0)
    assert np.any(np.asarray(g_prop) != 0) and np.all(np.isfinite(g_prop))


def brute_force_distortion(t, w, k=200):
    """The double integral of w(u) w(v) |u - v| by an O((n k)^2) sum over k points per interval."""
    pts, mass = [], []
    for i in range(len(w)):
        pts.append(t[i] + (np.arange(k) + 0.5) / k * (t[i + 1] - t[i]))
        mass.append(np.full(k, w[i] / k))
    pts, mass = np.concatenate(pts), np.concatenate(mass)
    return np.sum(mass[:, None] * mass[None, :] * np.abs(pts[:, None] - pts[None, :]))


def test_distortion_loss_matches_the_double_integral():
    rng = np.random.default_rng(6)
    t, w = random_stepfun(rng, 3, 12, zero_frac=0.3)
    got = np.asarray(stepfun.distortion_loss(jnp.array(t), jnp.array(w)))
    for r in range(3):
        np.testing.assert_allclose(got[r], brute_force_distortion(t[r].astype(np.float64), w[r]), rtol=1e-4)


def test_distortion_gradients_are_finite_with_zero_weights_and_zero_widths():
    t = jnp.array([0.0, 0.2, 0.2, 0.5, 1.0])
    g_t, g_w = jax.grad(lambda t, w: stepfun.distortion_loss(t, w), argnums=(0, 1))(t, jnp.array([0.0, 0.3, 0.0, 0.7]))
    assert np.all(np.isfinite(g_t)) and np.all(np.isfinite(g_w))


def test_max_dilate_takes_the_max_density_over_the_window():
    rng = np.random.default_rng(7)
    t, w = random_stepfun(rng, 2, 8)
    dilation = 0.05
    t_d, w_d = map(np.asarray, stepfun.max_dilate_weights(jnp.array(t), jnp.array(w), dilation, domain=(0.0, 1.0)))
    np.testing.assert_allclose(w_d.sum(-1), 1.0, rtol=1e-5)
    x = np.linspace(0.001, 0.999, 997)
    for r in range(2):
        density = w[r] / np.diff(t[r])
        dens_at = lambda y: density[np.clip(np.searchsorted(t[r], y, side="right") - 1, 0, 7)]
        window = x[:, None] + np.linspace(-dilation, dilation, 401)[None, :]
        expected = np.max(np.where((window >= 0) & (window < 1), dens_at(np.clip(window, 0, 1 - 1e-9)), 0), axis=1)
        got_density = w_d[r] / np.maximum(np.diff(t_d[r]), 1e-12)
        got = got_density[np.clip(np.searchsorted(t_d[r], x, side="right") - 1, 0, len(w_d[r]) - 1)]
        scale = expected.sum() / got.sum()  # the dilated function is renormalised
        # Away from breakpoints (where the grid window may miss a sliver), densities agree.
        np.testing.assert_allclose(np.median(got * scale / expected), 1.0, rtol=1e-3)
        assert np.mean(np.abs(got * scale - expected) / expected < 1e-2) > 0.97


def test_anneal_power_and_weights():
    np.testing.assert_allclose(stepfun.anneal_power(0.0, 10.0), 0.0)
    np.testing.assert_allclose(stepfun.anneal_power(1.0, 10.0), 1.0)
    np.testing.assert_allclose(stepfun.anneal_power(0.1, 10.0), 1.0 / 1.9, rtol=1e-6)
    t = jnp.array([0.0, 0.5, 0.5, 1.0])
    w = stepfun.anneal_weights(t, jnp.array([0.25, 0.5, 0.25]), 0.5, padding=0.0)
    np.testing.assert_allclose(w, [0.5, 0.0, 0.5], atol=1e-6)
