"""Volume rendering against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np

from mipnerf.model import volume


def test_constant_density_matches_beer_lambert():
    sigma, length = 0.7, 3.0
    dirs = jnp.array([[0.0, 0.0, 2.0]])  # |d| = 2: world length is twice the t length
    t = jnp.linspace(1.0, 1.0 + length, 65)[None]
    w = volume.compute_weights(jnp.full((1, 64), sigma), t, dirs)
    np.testing.assert_allclose(jnp.sum(w), 1 - np.exp(-sigma * length * 2), rtol=1e-5)
    # Weight of every interval is T(t_i) - T(t_{i+1}).
    trans = np.exp(-sigma * 2 * (np.asarray(t[0]) - 1.0))
    np.testing.assert_allclose(w[0], trans[:-1] - trans[1:], rtol=1e-4, atol=1e-7)


def test_composite_onto_white_and_depth():
    t = jnp.array([[2.0, 3.0, 4.0, 5.0]])
    weights = jnp.array([[0.0, 0.5, 0.0]])
    rgb = jnp.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    out = volume.composite(weights, rgb, t, background=jnp.ones(3))
    np.testing.assert_allclose(out.rgb[0], [1.0, 0.5, 0.5])
    np.testing.assert_allclose(out.acc[0], 0.5)
    np.testing.assert_allclose(out.depth[0], 3.5)
    empty = volume.composite(jnp.zeros((1, 3)), rgb, t, background=jnp.ones(3))
    np.testing.assert_allclose(empty.rgb[0], [1.0, 1.0, 1.0])
    assert np.isfinite(empty.depth[0])


def test_weight_gradients_are_finite_with_empty_and_zero_width_intervals():
    t = jnp.array([[2.0, 2.0, 3.0, 3.0, 4.0]])
    dirs = jnp.array([[0.0, 0.0, 1.0]])

    def loss(density):
        w = volume.compute_weights(density, t, dirs)
        out = volume.composite(w, jnp.full((1, 4, 3), 0.3), t, jnp.ones(3))
        return jnp.sum(out.rgb) + jnp.sum(out.depth)

    for density in [jnp.zeros((1, 4)), jnp.array([[0.0, 1e4, 0.0, 1.0]])]:
        g = jax.grad(loss)(density)
        assert np.all(np.isfinite(g))


def test_opaque_background_stops_every_ray_at_the_last_interval():
    rng = np.random.default_rng(0)
    density = jnp.array(rng.uniform(0, 2, size=(64, 8)), jnp.float32).at[:5].set(0.0)
    t = jnp.array(np.sort(rng.uniform(0.2, 50.0, size=(64, 9)), axis=-1), jnp.float32)
    dirs = jnp.array(rng.normal(size=(64, 3)), jnp.float32)
    opaque = volume.compute_weights(density, t, dirs, opaque=True)
    see_through = volume.compute_weights(density, t, dirs)
    np.testing.assert_allclose(jnp.sum(opaque, axis=-1), 1.0, rtol=1e-6)
    # Only the last interval changes: it takes what would have passed behind it.
    np.testing.assert_array_equal(opaque[:, :-1], see_through[:, :-1])
    np.testing.assert_allclose(opaque[:, -1], see_through[:, -1] + 1 - jnp.sum(see_through, axis=-1), rtol=1e-5, atol=1e-6)
    # Empty rays show the last interval's colour, not the background.
    out = volume.composite(opaque[:5], jnp.full((5, 8, 3), 0.25), t[:5], background=jnp.ones(3))
    np.testing.assert_allclose(out.rgb, 0.25, rtol=1e-6)
    g = jax.grad(lambda d: jnp.sum(volume.compute_weights(d, t, dirs, opaque=True) * jnp.arange(8.0)))(density)
    assert np.all(np.isfinite(g))
