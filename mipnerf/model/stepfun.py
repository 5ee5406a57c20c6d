"""Step functions along rays: sampling, resampling, outer measures and the mip-NeRF 360 losses.

A step function is a pair `(t, w)`: `t: [..., N+1]` sorted breakpoints and `w: [..., N]` the
non-negative weight (mass) of each interval `[t_i, t_{i+1})`. Its density on interval i is
`w_i / (t_{i+1} - t_i)`. Everything here is pure `jax.numpy` in float32 and batched over the
leading dimensions, with no Python loops over rays or samples.
Equation numbers refer to mip-NeRF 360 (Barron et al., CVPR 2022); the blurred interlevel loss
is Zip-NeRF's (Barron et al., ICCV 2023, sec. 4).
"""

import jax
import jax.numpy as jnp

_EPS = jnp.finfo(jnp.float32).eps


def count_le(a: jnp.ndarray, v: jnp.ndarray, strict: bool = False) -> jnp.ndarray:
    """For each query in `v`, the number of entries of sorted `a` that are <= it (< if `strict`).

    Args:
      a: [..., N] sorted.
      v: [..., M] queries (any order).

    Returns:
      [..., M] int32 in [0, N]: `searchsorted(a, v, side="left" if strict else "right")`, batched.
    """
    below = a[..., None, :] < v[..., :, None] if strict else a[..., None, :] <= v[..., :, None]
    return jnp.sum(below, axis=-1, dtype=jnp.int32)


def integrate_weights(w: jnp.ndarray) -> jnp.ndarray:
    """The cumulative distribution of normalised weights.

    Args:
      w: [..., N] non-negative weights; an all-zero row is treated as uniform.

    Returns:
      [..., N+1] non-decreasing, from exactly 0 to exactly 1.
    """
    total = jnp.sum(w, axis=-1, keepdims=True)
    pdf = jnp.where(total > 0, w / jnp.where(total > 0, total, 1), 1.0 / w.shape[-1])
    cdf = jnp.minimum(1.0, jnp.cumsum(pdf[..., :-1], axis=-1))
    edge = jnp.ones(w.shape[:-1] + (1,), dtype=cdf.dtype)
    return jnp.concatenate([0 * edge, cdf, edge], axis=-1)


def invert_cdf(u: jnp.ndarray, t: jnp.ndarray, w: jnp.ndarray) -> jnp.ndarray:
    """Inverse transform sampling: maps `u` in [0, 1] through the inverse CDF of the step function.

    The CDF is piecewise linear in t, so its inverse is too; intervals without weight are skipped.

    Args:
      u: [..., M] values in [0, 1].
      t: [..., N+1] breakpoints; w: [..., N] weights.

    Returns:
      [..., M] samples in [t_0, t_N], non-decreasing where `u` is.
    """
    cdf = integrate_weights(w)
    n = t.shape[-1] - 1
    idx = count_le(cdf, u)
    lo, hi = jnp.clip(idx - 1, 0, n), jnp.clip(idx, 0, n)
    cdf_lo, cdf_hi = jnp.take_along_axis(cdf, lo, -1), jnp.take_along_axis(cdf, hi, -1)
    t_lo, t_hi = jnp.take_along_axis(t, lo, -1), jnp.take_along_axis(t, hi, -1)
    denom = cdf_hi - cdf_lo
    frac = jnp.where(denom > 0, (u - cdf_lo) / jnp.where(denom > 0, denom, 1), 0.0)
    return t_lo + jnp.clip(frac, 0, 1) * (t_hi - t_lo)


def sample(jitter, t: jnp.ndarray, w: jnp.ndarray, num_samples: int) -> jnp.ndarray:
    """Draws `num_samples` sorted samples per ray from the step function's distribution.

    Args:
      jitter: [..., 1] in [0, 1), one offset per ray for stratified sampling (training), or
        None for deterministic stratum centres (evaluation).
      t: [..., N+1]; w: [..., N].

    Returns:
      [..., num_samples] sorted samples.
    """
    strata = jnp.arange(num_samples, dtype=jnp.float32)
    if jitter is None:
        u = (strata + 0.5) / num_samples
        u = jnp.broadcast_to(u, t.shape[:-1] + (num_samples,))
    else:
        u = (strata + jitter) / num_samples
    return invert_cdf(u, t, w)


def sample_intervals(jitter, t, w, num_samples: int, domain=(0.0, 1.0)) -> jnp.ndarray:
    """Draws `num_samples` intervals per ray: sample points, then cut halfway between neighbours.

    Args:
      jitter: as in `sample`.
      t: [..., N+1]; w: [..., N].
      domain: (low, high) to which the outer breakpoints are clipped.

    Returns:
      [..., num_samples+1] sorted breakpoints.
    """
    centers = sample(jitter, t, w, num_samples)
    mids = (centers[..., 1:] + centers[..., :-1]) / 2
    first = 2 * centers[..., :1] - mids[..., :1]
    last = 2 * centers[..., -1:] - mids[..., -1:]
    return jnp.clip(jnp.concatenate([first, mids, last], axis=-1), *domain)


def weights_to_density(t, w):
    """Densities `w_i / (t_{i+1} - t_i)`, 0 on zero-width intervals. t: [..., N+1]; w: [..., N] -> [..., N]."""
    dt = t[..., 1:] - t[..., :-1]
    return jnp.where(dt > 0, w / jnp.where(dt > 0, dt, 1), 0.0)


def max_dilate_weights(t, w, dilation: float, domain=(0.0, 1.0)):
    """Widens the step function so that its density at x is the max density within `dilation` of x.

    Used before resampling so that the next round's intervals also cover the neighbourhood of
    each proposal interval (mip-NeRF 360's dilation). The result is renormalised to sum to 1.

    Args:
      t: [..., N+1]; w: [..., N].
      dilation: half-width of the window, in the units of `t`.
      domain: the dilated breakpoints are clipped to it.

    Returns:
      (t_dilated [..., 2N], w_dilated [..., 2N-1]).
    """
    density = weights_to_density(t, w)
    t0, t1 = t[..., :-1] - dilation, t[..., 1:] + dilation
    # The dilated density changes only where a window [t0_i, t1_i) starts or ends.
    t_dilated = jnp.clip(jnp.sort(jnp.concatenate([t0, t1], axis=-1), axis=-1), *domain)
    mids = (t_dilated[..., 1:] + t_dilated[..., :-1]) / 2
    covers = (t0[..., None, :] <= mids[..., :, None]) & (mids[..., :, None] < t1[..., None, :])
    density_dilated = jnp.max(jnp.where(covers, density[..., None, :], 0.0), axis=-1)
    w_dilated = density_dilated * (t_dilated[..., 1:] - t_dilated[..., :-1])
    total = jnp.sum(w_dilated, axis=-1, keepdims=True)
    return t_dilated, w_dilated / jnp.maximum(total, _EPS)


def anneal_power(train_frac, slope: float):
    """The annealing exponent of mip-NeRF 360: b n / ((b - 1) n + 1), from 0 at n=0 to 1 at n=1."""
    train_frac = jnp.clip(train_frac, 0.0, 1.0)
    return slope * train_frac / ((slope - 1) * train_frac + 1)


def anneal_weights(t, w, power, padding: float):
    """Raises weights to `power` (after adding `padding`) for resampling; 0 on zero-width intervals.

    t: [..., N+1]; w: [..., N] -> [..., N].
    """
    dt = t[..., 1:] - t[..., :-1]
    # jnp.power keeps 0 ** 0 = 1, so at power 0 every interval of positive width is equally likely.
    return jnp.where(dt > 0, jnp.power(w + padding, power), 0.0)


def outer_measure(t, t_env, w_env):
    """For each interval of `t`, the total weight of the intervals of `(t_env, w_env)` it overlaps.

    This bounds from above the mass any step function consistent with the envelope can put in
    the interval (mip-NeRF 360, eq. 12).

    Args:
      t: [..., M+1] query breakpoints.
      t_env: [..., N+1]; w_env: [..., N].

    Returns:
      [..., M].
    """
    n = t_env.shape[-1] - 1
    cw = jnp.concatenate([jnp.zeros_like(w_env[..., :1]), jnp.cumsum(w_env, axis=-1)], axis=-1)
    # First envelope interval that reaches past each query start, and one past the last that
    # starts before each query end.
    lo = jnp.clip(count_le(t_env, t[..., :-1]) - 1, 0, n)
    hi = jnp.minimum(count_le(t_env, t[..., 1:], strict=True), n)
    outer = jnp.take_along_axis(cw, hi, -1) - jnp.take_along_axis(cw, lo, -1)
    return jnp.maximum(outer, 0.0)


def interlevel_loss(t, w, t_env, w_env):
    """mip-NeRF 360's proposal loss (eq. 13): penalises NeRF weights that exceed the proposal's bound.

    The NeRF side `(t, w)` is held constant: only the proposal weights `w_env` receive gradients.

    Args:
      t: [..., M+1], w: [..., M]: the NeRF round.
      t_env: [..., N+1], w_env: [..., N]: a proposal round.

    Returns:
      [...] the loss of each ray.
    """
    t, w = jax.lax.stop_gradient(t), jax.lax.stop_gradient(w)
    bound = outer_measure(t, jax.lax.stop_gradient(t_env), w_env)
    return jnp.sum(jnp.maximum(0.0, w - bound) ** 2 / (w + _EPS), axis=-1)


def window_integral(u: jnp.ndarray, t: jnp.ndarray, w: jnp.ndarray) -> jnp.ndarray:
    """The integral of the step function's cumulative weight C from below its start to each u.

    C is 0 before t_0, rises linearly across each interval to its cumulative weight, and stays at
    the total weight after t_N, so its integral G is piecewise quadratic.

    Args:
      u: [..., M] any points (outside [t_0, t_N] too); t: [..., N+1]; w: [..., N].

    Returns:
      [..., M] G(u) = integral of C from -inf to u.
    """
    n = t.shape[-1] - 1
    dt = t[..., 1:] - t[..., :-1]
    density = weights_to_density(t, w)
    cum = jnp.concatenate([jnp.zeros_like(w[..., :1]), jnp.cumsum(w, axis=-1)], axis=-1)  # C at the knots
    knot_g = jnp.concatenate([jnp.zeros_like(w[..., :1]), jnp.cumsum((cum[..., :-1] + cum[..., 1:]) / 2 * dt, axis=-1)],
                             axis=-1)  # G at the knots
    k = jnp.clip(count_le(t, u) - 1, 0, n - 1)
    take = lambda a, i: jnp.take_along_axis(a, i, -1)
    d = jnp.clip(u - take(t, k), 0.0, take(dt, k))  # the part of interval k below u
    beyond = jnp.maximum(u - take(t, k + 1), 0.0)  # past the last knot: C is the total there
    g = take(knot_g, k) + take(cum, k) * d + 0.5 * take(density, k) * d**2 + take(cum, k + 1) * beyond
    return jnp.where(u < t[..., :1], 0.0, g)


def blur_and_resample(t_query: jnp.ndarray, t: jnp.ndarray, w: jnp.ndarray, radius) -> jnp.ndarray:
    """The weights of the step function (t, w), blurred by a box of half-width `radius`, on each
    interval of `t_query` (Zip-NeRF's anti-aliased resampling).

    The step function's density convolved with a box of width 2 radius (and unit area) is a
    piecewise-linear spline; its integral over [a, b] is B(b) - B(a), where the blurred cumulative
    weight B(x) = (G(x + r) - G(x - r)) / 2r and G is `window_integral`. Weight blurred past the
    ends of `t_query` is not counted.

    Args:
      t_query: [..., M+1] sorted; t: [..., N+1]; w: [..., N] non-negative.
      radius: > 0, a scalar or broadcastable to [..., 1].

    Returns:
      [..., M] non-negative.
    """
    g = lambda u: window_integral(u, t, w)
    blurred_cdf = (g(t_query + radius) - g(t_query - radius)) / (2 * radius)
    return jnp.maximum(blurred_cdf[..., 1:] - blurred_cdf[..., :-1], 0.0)


def blurred_interlevel_loss(t, w, t_env, w_env, radius):
    """Zip-NeRF's anti-aliased proposal loss: the NeRF round's weights, blurred along the ray by a
    box of half-width `radius` and resampled onto the proposal's intervals (`blur_and_resample`),
    must not exceed the proposal's weights there. Blurring makes the bound smooth in the NeRF's
    interval positions, so that a proposal on a grid does not alias along the ray.

    Like `interlevel_loss`, only the proposal weights `w_env` receive gradients.

    Args:
      t: [..., M+1], w: [..., M]: the NeRF round.
      t_env: [..., N+1], w_env: [..., N]: a proposal round.
      radius: the blur's half-width, in the units of t (Zip-NeRF: 0.03 for the first proposal
        round, 0.003 for the second, in normalised distance).

    Returns:
      [...] the loss of each ray: the mean over the proposal's intervals of
      max(0, w_blurred - w_env)^2 / (w_env + eps).
    """
    t, w, t_env = (jax.lax.stop_gradient(x) for x in (t, w, t_env))
    w_blurred = blur_and_resample(t_env, t, w, radius)
    return jnp.mean(jnp.maximum(0.0, w_blurred - w_env) ** 2 / (w_env + _EPS), axis=-1)


def distortion_loss(t, w):
    """mip-NeRF 360's distortion loss in closed form (eq. 15), linear in the number of intervals.

    Equals the double integral of w(u) w(v) |u - v| over the step function's density, which
    pulls the weights of a ray together into as small a region as possible.

    Args:
      t: [..., N+1] breakpoints (normalised distances); w: [..., N] weights.

    Returns:
      [...] the loss of each ray.
    """
    mids = (t[..., 1:] + t[..., :-1]) / 2
    dt = t[..., 1:] - t[..., :-1]
    zero = jnp.zeros_like(w[..., :1])
    w_before = jnp.concatenate([zero, jnp.cumsum(w, axis=-1)[..., :-1]], axis=-1)
    wm_before = jnp.concatenate([zero, jnp.cumsum(w * mids, axis=-1)[..., :-1]], axis=-1)
    # sum_{i,j} w_i w_j |m_i - m_j| = 2 sum_i w_i sum_{j<i} w_j (m_i - m_j), as mids are sorted.
    between = 2 * jnp.sum(w * (mids * w_before - wm_before), axis=-1)
    within = jnp.sum(w**2 * dt, axis=-1) / 3
    return between + within
