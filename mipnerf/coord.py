"""Gaussians of conical frustums and the (integrated) positional encodings of mip-NeRF.

All functions are pure `jax.numpy`, float32, and broadcast over leading dimensions.
Equation numbers refer to mip-NeRF (Barron et al., ICCV 2021).
"""

import jax.numpy as jnp


def frustum_moments(t0: jnp.ndarray, t1: jnp.ndarray, base_radius: jnp.ndarray):
    """Mean and variance along the axis, and variance across it, of a conical frustum (eq. 7).

    The frustum holds the points at distance `t` in `[t0, t1]` along a cone whose radius is
    `base_radius * t`. The formulas use the interval's centre and half-width, which keeps them
    stable for narrow intervals far from the origin.

    Args:
      t0, t1: [...] start and end of the interval along the ray, in units of the ray direction.
      base_radius: [...] radius of the cone at unit distance.

    Returns:
      (t_mean, t_var, r_var), each [...]: the mean and variance of the distance along the ray and
      the variance of the offset along each axis perpendicular to it.
    """
    mu = (t0 + t1) / 2
    hw = (t1 - t0) / 2
    mu2, hw2 = mu**2, hw**2
    denom = jnp.maximum(3 * mu2 + hw2, 1e-10)
    t_mean = mu + (2 * mu * hw2) / denom
    t_var = hw2 / 3 - (4 / 15) * (hw2**2 * (12 * mu2 - hw2)) / denom**2
    r_var = base_radius**2 * (mu2 / 4 + (5 / 12) * hw2 - (4 / 15) * hw2**2 / denom)
    return t_mean, t_var, r_var


def lift_gaussian(d: jnp.ndarray, t_mean, t_var, r_var, diag: bool = True):
    """Lifts a Gaussian given along and across a ray direction into world coordinates (eq. 8).

    Args:
      d: [..., 3] ray direction (need not be unit length; distances are in its units).
      t_mean, t_var, r_var: [..., S] moments from `frustum_moments`.
      diag: return only the diagonal of the covariance.

    Returns:
      mean: [..., S, 3], relative to the ray origin.
      cov: [..., S, 3] if `diag`, else [..., S, 3, 3].
    """
    d = d[..., None, :]
    mean = d * t_mean[..., None]
    d_mag_sq = jnp.maximum(jnp.sum(d**2, axis=-1, keepdims=True), 1e-10)
    if diag:
        d_outer = d**2
        null_outer = 1 - d_outer / d_mag_sq
        cov = t_var[..., None] * d_outer + r_var[..., None] * null_outer
    else:
        d_outer = d[..., :, None] * d[..., None, :]
        null_outer = jnp.eye(3) - d_outer / d_mag_sq[..., None]
        cov = t_var[..., None, None] * d_outer + r_var[..., None, None] * null_outer
    return mean, cov


def conical_frustum_to_gaussian(d, t0, t1, base_radius, diag: bool = True):
    """Gaussian approximation of each conical frustum along a cone-cast ray.

    Args:
      d: [..., 3] ray direction.
      t0, t1: [..., S] interval bounds along the ray.
      base_radius: [..., 1] cone radius at unit distance.
      diag: diagonal covariance only (what IPE needs).

    Returns:
      mean: [..., S, 3] relative to the ray origin; cov: [..., S, 3] or [..., S, 3, 3].
    """
    t_mean, t_var, r_var = frustum_moments(t0, t1, base_radius)
    return lift_gaussian(d, t_mean, t_var, r_var, diag)


def _scales(min_deg: int, max_deg: int) -> jnp.ndarray:
    return 2.0 ** jnp.arange(min_deg, max_deg, dtype=jnp.float32)


def integrated_pos_enc(mean: jnp.ndarray, var: jnp.ndarray, min_deg: int, max_deg: int) -> jnp.ndarray:
    """Integrated positional encoding of a Gaussian with diagonal covariance (eq. 14).

    Each coordinate x is encoded as E[sin(2^l x)] and E[cos(2^l x)] under the Gaussian, that is
    sin/cos(2^l mean) * exp(-0.5 * 4^l var), for degrees l in [min_deg, max_deg).

    Args:
      mean, var: [..., 3] mean and diagonal covariance.

    Returns:
      [..., 2 * 3 * (max_deg - min_deg)]: the sines of every (degree, axis), then the cosines.
    """
    scales = _scales(min_deg, max_deg)
    shape = mean.shape[:-1] + (-1,)
    scaled_mean = jnp.reshape(mean[..., None, :] * scales[:, None], shape)
    scaled_var = jnp.reshape(var[..., None, :] * scales[:, None] ** 2, shape)
    attenuation = jnp.exp(-0.5 * scaled_var)
    return jnp.concatenate([jnp.sin(scaled_mean) * attenuation, jnp.cos(scaled_mean) * attenuation], axis=-1)


def pos_enc(x: jnp.ndarray, min_deg: int, max_deg: int, append_identity: bool = True) -> jnp.ndarray:
    """NeRF's positional encoding: sin and cos of 2^l x for l in [min_deg, max_deg).

    Args:
      x: [..., C].

    Returns:
      [..., C * (1 + 2 * (max_deg - min_deg))] with `x` first when `append_identity`, else without it.
    """
    scales = _scales(min_deg, max_deg)
    scaled = jnp.reshape(x[..., None, :] * scales[:, None], x.shape[:-1] + (-1,))
    features = [jnp.sin(scaled), jnp.cos(scaled)]
    return jnp.concatenate(([x] if append_identity else []) + features, axis=-1)
