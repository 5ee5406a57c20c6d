"""Scene contraction, Gaussians pushed through it, encodings on a basis, and ray spacings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mipnerf.model import coord


def random_points(rng, n, radius_range):
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    return direction * rng.uniform(*radius_range, size=(n, 1))


def test_contraction_is_identity_inside_and_bounded_outside():
    rng = np.random.default_rng(0)
    inside = random_points(rng, 1000, (0.0, 1.0)).astype(np.float32)
    np.testing.assert_array_equal(coord.contract(jnp.array(inside)), inside)
    outside = random_points(rng, 1000, (1.0, 1e6)).astype(np.float32)
    radii = np.linalg.norm(coord.contract(jnp.array(outside)), axis=-1)
    assert np.all((radii >= 1 - 1e-6) & (radii < 2 + 1e-6))
    # Radii grow with distance, and the directions are kept.
    order = np.argsort(np.linalg.norm(outside, axis=-1))
    assert np.all(np.diff(radii[order]) >= -1e-6)
    np.testing.assert_allclose(np.asarray(coord.contract(jnp.array(outside))) / radii[:, None],
                               outside / np.linalg.norm(outside, axis=-1, keepdims=True), atol=1e-6)
    # Continuous across the unit sphere.
    sphere = random_points(rng, 100, (1.0, 1.0)).astype(np.float32)
    for eps in (1e-3, 1e-4):
        np.testing.assert_allclose(coord.contract(jnp.array(sphere * (1 + eps))), sphere, atol=3 * eps)


def test_inverse_contraction_round_trips():
    rng = np.random.default_rng(1)
    x = random_points(rng, 1000, (0.0, 50.0)).astype(np.float32)
    np.testing.assert_allclose(coord.inv_contract(coord.contract(jnp.array(x))), x, rtol=2e-4, atol=1e-6)


def test_jacobian_matches_autodiff():
    rng = np.random.default_rng(2)
    x = jnp.array(np.concatenate([random_points(rng, 50, (0.1, 0.99)), random_points(rng, 50, (1.01, 100.0))]),
                  jnp.float32)
    expected = jax.vmap(jax.jacfwd(coord.contract))(x)
    np.testing.assert_allclose(coord.contract_jacobian(x), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(coord.contract_jacobian(x), np.swapaxes(expected, -1, -2), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("centre", [[1.5, -0.5, 0.8], [4.0, 3.0, -6.0], [0.3, 0.2, 0.1]])
def test_pushed_forward_covariance_matches_monte_carlo(centre):
    rng = np.random.default_rng(3)
    mean = np.array(centre)
    # Small, so that linearising at the mean is accurate: a few thousandths of the distance.
    a = rng.normal(size=(3, 3)) * 0.003 * np.linalg.norm(mean)
    cov = a @ a.T + 1e-6 * np.eye(3)
    samples = rng.multivariate_normal(mean, cov, size=400_000)
    contracted = np.asarray(coord.contract(jnp.array(samples, jnp.float32)), np.float64)
    c_mean, c_cov = coord.contract_gaussian(jnp.array(mean, jnp.float32), jnp.array(cov, jnp.float32))
    scale = np.max(np.abs(np.cov(contracted.T)))
    np.testing.assert_allclose(c_mean, contracted.mean(0), atol=0.05 * np.sqrt(scale))
    np.testing.assert_allclose(c_cov, np.cov(contracted.T), atol=0.05 * scale)


@pytest.mark.parametrize("contraction", [False, True])
@pytest.mark.parametrize("cylinder", [False, True])
def test_closed_form_projections_equal_the_full_covariance_path(contraction, cylinder):
    rng = np.random.default_rng(4)
    origins = jnp.array(rng.normal(size=(64, 3)) * 0.5, jnp.float32)
    directions = jnp.array(rng.normal(size=(64, 3)), jnp.float32)
    t = jnp.array(np.sort(rng.uniform(0.05, 30.0, size=(64, 9)), axis=-1), jnp.float32)
    radii = jnp.array(rng.uniform(0.001, 0.02, size=(64, 1)), jnp.float32)
    basis = jnp.array(coord.basis_directions("icosahedron"))
    got_mean, got_var = coord.interval_gaussians_on_basis(origins, directions, t[:, :-1], t[:, 1:], radii, basis,
                                                          contraction, cylinder)
    # The reference in float64 numpy: the full 3x3 covariance, J Sigma J and the projections.
    moments = (coord.cylinder_moments if cylinder else coord.frustum_moments)(t[:, :-1], t[:, 1:], radii)
    t_mean, t_var, r_var = (np.asarray(m, np.float64)[..., None, None] for m in moments)
    d = np.asarray(directions, np.float64)[:, None, :]
    mean = np.asarray(origins, np.float64)[:, None, :] + d * t_mean[..., 0]
    ddt = d[..., :, None] * d[..., None, :]
    cov = t_var * ddt + r_var * (np.eye(3) - ddt / np.sum(d**2, axis=-1)[..., None, None])
    if contraction:
        r = np.linalg.norm(mean, axis=-1)[..., None, None]
        uu = mean[..., :, None] * mean[..., None, :] / r**2
        jac = np.where(r <= 1, np.eye(3), uu / r**2 + (2 * r - 1) / r**2 * (np.eye(3) - uu))
        cov = jac @ cov @ jac
        mean = np.where(r[..., 0] <= 1, mean, (2 - 1 / r[..., 0]) * mean / r[..., 0])
    b = np.asarray(basis, np.float64)
    np.testing.assert_allclose(got_mean, mean @ b.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_var, np.einsum("kj,...ji,ki->...k", b, cov, b), rtol=1e-3, atol=1e-9)
    # The float32 path through the full covariance agrees too, to its own (lower) precision.
    full_mean, full_cov = coord.lift_gaussian(directions, *moments, diag=False)
    if contraction:
        full_mean, full_cov = coord.contract_gaussian(full_mean + origins[:, None, :], full_cov)
        np.testing.assert_allclose(coord.project_gaussian(full_mean, full_cov, basis)[1], got_var, rtol=1e-2, atol=1e-7)
    assert np.all(np.asarray(got_var) > -1e-7)


def test_axes_basis_gives_the_axis_aligned_ipe_exactly():
    rng = np.random.default_rng(5)
    d = jnp.array(rng.normal(size=(16, 3)), jnp.float32)
    t = jnp.array(np.sort(rng.uniform(2.0, 6.0, size=(16, 5)), axis=-1), jnp.float32)
    r = jnp.full((16, 1), 0.01, jnp.float32)
    mean, diag_cov = coord.conical_frustum_to_gaussian(d, t[:, :-1], t[:, 1:], r, diag=True)
    _, full_cov = coord.conical_frustum_to_gaussian(d, t[:, :-1], t[:, 1:], r, diag=False)
    axes = jnp.array(coord.basis_directions("axes"))
    proj_mean, proj_var = coord.project_gaussian(mean, full_cov, axes)
    np.testing.assert_array_equal(coord.integrated_pos_enc(proj_mean, proj_var, 0, 16),
                                  coord.integrated_pos_enc(mean, diag_cov, 0, 16))


@pytest.mark.parametrize("kind,count", [("axes", 3), ("octahedron", 9), ("icosahedron", 21)])
def test_basis_directions_are_unit_and_never_antipodal(kind, count):
    basis = coord.basis_directions(kind)
    assert basis.shape == (count, 3)
    np.testing.assert_allclose(np.linalg.norm(basis, axis=-1), 1.0, rtol=1e-6)
    dots = basis @ basis.T * (1 - np.eye(count))
    assert np.max(np.abs(dots)) < 0.99  # no repeated direction and no antipodal pair
    # They cover the sphere: every direction is within 40 degrees of one of them (or its opposite).
    rng = np.random.default_rng(6)
    probe = random_points(rng, 2000, (1.0, 1.0))
    if kind != "axes":
        assert np.min(np.max(np.abs(probe @ basis.T), axis=-1)) > np.cos(np.radians(40))


@pytest.mark.parametrize("spacing", coord.RAY_SPACINGS)
def test_ray_spacing_round_trips(spacing):
    near, far = jnp.array([[0.2]]), jnp.array([[1e6 if spacing == "disparity" else 6.0]])
    s = jnp.linspace(0.0, 1.0, 101)[None]
    t = coord.s_to_t(s, near, far, spacing)
    assert float(t[0, 0]) == pytest.approx(float(near[0, 0])) and float(t[0, -1]) == pytest.approx(float(far[0, 0]), rel=1e-4)
    assert np.all(np.diff(np.asarray(t)) > 0)
    np.testing.assert_allclose(coord.t_to_s(t, near, far, spacing), s, atol=1e-5)


def test_disparity_spacing_puts_half_the_samples_within_twice_near():
    near, far = jnp.array([[0.2]]), jnp.array([[1e6]])
    s = (jnp.arange(1000)[None] + 0.5) / 1000
    t = np.asarray(coord.s_to_t(s, near, far, "disparity"))
    assert np.mean(t < 2 * 0.2) == pytest.approx(0.5, abs=0.002)


def ladder64(x, p, premult):
    """The power ladder in float64 numpy, from its formula."""
    q = abs(p - 1)
    return q / p * ((premult * x / q + 1) ** p - 1)


@pytest.mark.parametrize("p, premult", [(-1.5, 2.0), (-0.25, 1e4), (0.5, 3.0), (2.0, 1.0), (0.0, 2.0), (1.0, 5.0)])
def test_power_ladder_matches_its_formula_and_inverts(p, premult):
    x = np.geomspace(1e-4, 1e3, 50)
    got = np.asarray(coord.power_ladder(jnp.asarray(x, jnp.float32), p, premult))
    expected = {0.0: np.log1p(premult * x), 1.0: premult * x}.get(p)
    expected = ladder64(x, p, premult) if expected is None else expected
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Slope premult at 0, for every p.
    h = 1e-4 / premult
    assert float(coord.power_ladder(jnp.float32(h), p, premult)) / h == pytest.approx(premult, rel=1e-3)
    back = np.asarray(coord.power_ladder_inverse(jnp.asarray(got), p, premult))
    keep = got < 0.999 * (abs(p - 1) / -p if p < 0 else np.inf)  # where float32 still resolves the curve
    np.testing.assert_allclose(back[keep], x[keep], rtol=2e-3)


def test_power_ladder_spacing_maps_the_ray_onto_zero_one_from_near_zero():
    near, far = jnp.array([[0.0]]), jnp.array([[1e6]])
    s = jnp.linspace(0.0, 1.0, 1001)[None]
    t = np.asarray(coord.s_to_t(s, near, far, "power_ladder", -1.5, 2.0))
    assert t[0, 0] == 0.0 and t[0, -1] == pytest.approx(1e6)
    assert np.all(np.diff(t) >= 0) and np.all(np.isfinite(t))
    # Linear near the camera (slope premult of the ladder), disparity-like far away.
    g_far = ladder64(1e6, -1.5, 2.0)
    np.testing.assert_allclose(t[0, 1], 0.001 * g_far / 2.0, rtol=0.01)
    mid = np.asarray(coord.s_to_t(jnp.array([[0.5]]), near, far, "power_ladder"))[0, 0]
    assert mid == pytest.approx(2.5 / 2 * ((1 - 0.5 * g_far / (2.5 / 1.5)) ** (-1 / 1.5) - 1), rel=1e-4)
    inner = t[0, :-50]  # round trip where float32 resolves t
    np.testing.assert_allclose(coord.t_to_s(jnp.asarray(inner)[None], near, far, "power_ladder"), s[:, :-50], atol=1e-5)
