"""Gaussians of conical frustums and the (integrated) positional encodings of mip-NeRF.

All functions are pure `jax.numpy`, float32, and broadcast over leading dimensions.
Equation numbers refer to mip-NeRF (Barron et al., ICCV 2021).
"""

import jax
import jax.numpy as jnp
import numpy as np


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


# --- unbounded scenes: contraction and encodings on a basis of directions (mip-NeRF 360) -----


def contract(x: jnp.ndarray) -> jnp.ndarray:
    """mip-NeRF 360's scene contraction (eq. 10): x inside the unit ball, (2 - 1/|x|) x/|x| outside.

    Maps all of space into the ball of radius 2. x: [..., 3] -> [..., 3].
    """
    norm_sq = jnp.maximum(jnp.sum(x**2, axis=-1, keepdims=True), 1e-12)
    norm = jnp.sqrt(norm_sq)
    return jnp.where(norm_sq <= 1, x, (2 - 1 / norm) * x / norm)


def inv_contract(z: jnp.ndarray) -> jnp.ndarray:
    """The inverse of `contract` on the open ball of radius 2: z / (2|z| - |z|^2) outside the unit ball."""
    norm = jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-6)
    return jnp.where(norm <= 1, z, z / (2 * norm - norm**2))


def contract_eigenvalues(norm_sq: jnp.ndarray):
    """The eigenvalues of `contract`'s Jacobian at points of squared norm r^2 = norm_sq [...] (> 0):
    (radial [...], tangential [...]). Outside the unit ball the radial one, along x, is 1/r^2 (the
    derivative of (2 - 1/r)) and the tangential one, twice across x, is (2 - 1/r) / r = (2r - 1)/r^2;
    inside both are 1."""
    inside = norm_sq <= 1
    return jnp.where(inside, 1.0, 1 / norm_sq), jnp.where(inside, 1.0, (2 * jnp.sqrt(norm_sq) - 1) / norm_sq)


def contract_jacobian(x: jnp.ndarray) -> jnp.ndarray:
    """The Jacobian of `contract` at x: [..., 3] -> [..., 3, 3] (symmetric).

    Outside the unit ball, with u = x / |x|: J = radial u u^T + tangential (I - u u^T), the
    eigenvalues of `contract_eigenvalues`; the identity inside.
    """
    norm_sq = jnp.maximum(jnp.sum(x**2, axis=-1), 1e-12)[..., None, None]
    uu = x[..., :, None] * x[..., None, :] / norm_sq
    radial, tangential = contract_eigenvalues(norm_sq)
    outside = radial * uu + tangential * (jnp.eye(3) - uu)
    return jnp.where(norm_sq <= 1, jnp.broadcast_to(jnp.eye(3), outside.shape), outside)


def contract_gaussian(mean: jnp.ndarray, cov: jnp.ndarray):
    """Pushes Gaussians through `contract` by linearising it at their means (mip-NeRF 360, sec. 2).

    Args:
      mean: [..., 3]; cov: [..., 3, 3] full covariances.

    Returns:
      (contract(mean) [..., 3], J cov J^T [..., 3, 3] with J the Jacobian at the mean).
    """
    jac = contract_jacobian(mean)
    return contract(mean), jac @ cov @ jac  # J is symmetric, so J^T = J


def contract_volume_scale(x: jnp.ndarray) -> jnp.ndarray:
    """|det J|^(1/3) of `contract` at points [..., 3] -> [...]: how much it shrinks a small isotropic
    Gaussian there: the cube root of the product of J's eigenvalues (`contract_eigenvalues`)."""
    radial, tangential = contract_eigenvalues(jnp.maximum(jnp.sum(x**2, axis=-1), 1e-12))
    return (radial * tangential**2) ** (1 / 3)


# Zip-NeRF's multisample pattern, in a frame with z along the ray: six points on two interleaved
# triangles (angles 0, 120, 240 then 180, 300, 60 degrees) at evenly spaced depths. Scaled so that
# their mean is 0 and their covariance the identity, with no depth-angle correlation.
_ANGLES = np.array([0, 2, 4, 3, 5, 1]) * np.pi / 3
MULTISAMPLE_PATTERN = np.stack([np.sqrt(2) * np.cos(_ANGLES), np.sqrt(2) * np.sin(_ANGLES),
                                np.sqrt(12 / 35) * (np.arange(6) - 2.5)], axis=-1).astype(np.float32)  # [6, 3]


def perpendicular_frame(d: jnp.ndarray):
    """Two unit vectors [..., 3] that make an orthonormal frame with d / |d| (Frisvad's construction)."""
    n = d / jnp.maximum(jnp.linalg.norm(d, axis=-1, keepdims=True), 1e-10)
    x, y, z = n[..., 0], n[..., 1], n[..., 2]
    sign = jnp.where(z >= 0, 1.0, -1.0)
    a = -1 / (sign + z)
    b = x * y * a
    u = jnp.stack([1 + sign * x * x * a, sign * b, -sign * x], axis=-1)
    v = jnp.stack([b, sign + y * y * a, -y], axis=-1)
    return u, v


def multisample_rotation(shape, key=None):
    """Each interval's turn of the 6-point pattern about its ray (Zip-NeRF's): with `key`, a random
    angle and a random reversal of the points' angular order (training); without, every other
    interval reversed and turned by 30 degrees (evaluation), so that neighbours interleave.

    Returns:
      (angle [*shape] float32, reverse [*shape] bool), for `frustum_multisamples`.
    """
    if key is None:
        odd = (jnp.arange(shape[-1]) % 2).astype(bool)
        return jnp.broadcast_to(jnp.where(odd, np.pi / 6, 0.0), shape), jnp.broadcast_to(odd, shape)
    angle_key, reverse_key = jax.random.split(key)
    return (2 * np.pi * jax.random.uniform(angle_key, shape), jax.random.bernoulli(reverse_key, shape=shape))


def frustum_multisamples(origins, directions, t0, t1, radii, cylinder: bool = False, count: int = 6,
                         rotation=None, scale_mult: float = 1.0):
    """Points spread over each conical frustum whose mean and covariance are its Gaussian's.

    Args:
      origins, directions: [..., 3]; t0, t1: [..., S]; radii: [..., 1] (see `frustum_moments`).
      cylinder: cylinders (`cylinder_moments`) rather than conical frustums.
      count: 6 for `MULTISAMPLE_PATTERN`, or 1 for the mean alone (the covariance then only
        shows in the scale).
      rotation: None, or `multisample_rotation`'s (angle, reverse), each [..., S]: the pattern of
        each interval turned about the ray by the angle, its angular order reversed where
        `reverse` (its mean and covariance are unchanged).
      scale_mult: each point's scale is this times the radial standard deviation (Zip-NeRF's
        `unscented_scale_mult` 0.5 on its radial offset sqrt(0.5) r t gives about 0.71).

    Returns:
      points: [..., S, count, 3] world positions (the pattern scaled by the frustum's axial and
      radial standard deviations); scales: [..., S, count] the radial standard deviation, each
      point's isotropic scale.
    """
    t_mean, t_var, r_var = (cylinder_moments if cylinder else frustum_moments)(t0, t1, radii)
    u, v = perpendicular_frame(directions)
    d_norm = jnp.linalg.norm(directions, axis=-1, keepdims=True)
    axial = directions / jnp.maximum(d_norm, 1e-10)
    sigma_t = (jnp.sqrt(jnp.maximum(t_var, 0)) * d_norm)[..., None]  # [..., S, 1]
    sigma_r = jnp.sqrt(jnp.maximum(r_var, 0))[..., None]
    if count not in (1, 6):
        raise ValueError(f"count={count}: expected 1 or 6 multisamples")
    p = jnp.asarray(MULTISAMPLE_PATTERN if count == 6 else np.zeros((1, 3), np.float32))
    px, py = p[:, 0], p[:, 1]  # [M]
    if rotation is not None and count == 6:
        angle, reverse = rotation
        theta = jnp.where(reverse[..., None], _ANGLES[::-1], _ANGLES) + angle[..., None]  # [..., S, 6]
        px, py = np.sqrt(2) * jnp.cos(theta), np.sqrt(2) * jnp.sin(theta)
    px, py = jnp.broadcast_to(px, sigma_t.shape[:-1] + (count,)), jnp.broadcast_to(py, sigma_t.shape[:-1] + (count,))
    centre = origins[..., None, :] + directions[..., None, :] * t_mean[..., None]  # [..., S, 3]
    offsets = (sigma_r[..., None] * (px[..., None] * u[..., None, None, :] + py[..., None] * v[..., None, None, :])
               + sigma_t[..., None] * p[:, 2:3] * axial[..., None, None, :])  # [..., S, M, 3]
    points = centre[..., None, :] + offsets
    return points, jnp.broadcast_to(scale_mult * sigma_r, points.shape[:-1])


def _subdivided_polyhedron(vertices: jnp.ndarray, faces: list, subdivisions: int) -> jnp.ndarray:
    """Unit directions of the vertices of a polyhedron whose triangular faces are each cut into
    subdivisions^2 triangles, projected onto the sphere; duplicates removed. Numpy in, numpy out."""
    import numpy as np

    points = []
    for a, b, c in faces:
        for i in range(subdivisions + 1):
            for j in range(subdivisions + 1 - i):
                k = subdivisions - i - j
                points.append((i * vertices[a] + j * vertices[b] + k * vertices[c]) / subdivisions)
    points = np.array(points)
    points /= np.linalg.norm(points, axis=-1, keepdims=True)
    unique = []
    for p in points:
        if not any(np.allclose(p, q, atol=1e-6) for q in unique):
            unique.append(p)
    return np.array(unique)


def basis_directions(kind: str, subdivisions: int = 2):
    """The unit directions [K, 3] whose projections the encoding uses (float32 numpy).

    "axes": x, y, z (mip-NeRF's axis-aligned IPE). "octahedron" and "icosahedron": the vertices of
    that polyhedron with each face cut into subdivisions^2 triangles, on the sphere, one of each
    antipodal pair kept (the icosahedron at 2 subdivisions gives mip-NeRF 360's 21 directions).
    """
    import numpy as np

    if kind == "axes":
        return np.eye(3, dtype=np.float32)
    if kind == "octahedron":
        vertices = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], np.float64)
        faces = [(a, b, c) for a in (0, 1) for b in (2, 3) for c in (4, 5)]
    elif kind == "icosahedron":
        g = (1 + np.sqrt(5)) / 2
        vertices = np.array([[-1, g, 0], [1, g, 0], [-1, -g, 0], [1, -g, 0], [0, -1, g], [0, 1, g],
                             [0, -1, -g], [0, 1, -g], [g, 0, -1], [g, 0, 1], [-g, 0, -1], [-g, 0, 1]], np.float64)
        vertices /= np.linalg.norm(vertices, axis=-1, keepdims=True)
        # The 20 faces are the triples of mutually nearest vertices (edge length 2 before normalising).
        edge = np.min([np.linalg.norm(vertices[0] - v) for v in vertices[1:]])
        near = np.linalg.norm(vertices[:, None] - vertices[None], axis=-1) < edge * 1.01
        faces = [(a, b, c) for a in range(12) for b in range(a + 1, 12) for c in range(b + 1, 12)
                 if near[a, b] and near[b, c] and near[a, c]]
    else:
        raise ValueError(f"unknown basis {kind!r}; expected 'axes', 'octahedron' or 'icosahedron'")
    directions = _subdivided_polyhedron(vertices, faces, subdivisions)
    kept = []
    for d in directions:
        if not any(np.allclose(d, -q, atol=1e-6) for q in kept):
            kept.append(d)
    return np.array(kept, np.float32)


def project_gaussian(mean: jnp.ndarray, cov: jnp.ndarray, basis: jnp.ndarray):
    """Means and variances of a Gaussian's projections onto unit directions.

    Args:
      mean: [..., 3]; cov: [..., 3, 3]; basis: [K, 3].

    Returns:
      ([..., K] p_k^T mean, [..., K] p_k^T cov p_k).
    """
    return mean @ basis.T, jnp.sum((cov @ basis.T) * basis.T, axis=-2)


def cylinder_moments(t0: jnp.ndarray, t1: jnp.ndarray, radius: jnp.ndarray):
    """Like `frustum_moments` for a cylinder of constant `radius` (mip-NeRF's choice for NDC rays):
    the distance is uniform on [t0, t1] and each perpendicular offset has variance radius^2 / 4."""
    return (t0 + t1) / 2, (t1 - t0) ** 2 / 12, jnp.broadcast_to(radius**2 / 4, t0.shape)


def interval_gaussians_on_basis(origins, directions, t0, t1, radii, basis, contraction: bool, cylinder: bool = False):
    """The Gaussian of each interval of each ray, optionally contracted, projected onto `basis`.

    The interval's covariance is Sigma = alpha I + beta d d^T (alpha = r_var, beta = t_var -
    r_var / |d|^2), and contraction's Jacobian at the mean is J = b I + (a - b) u u^T (a, b its radial and
    tangential `contract_eigenvalues`, u the unit mean). So each projection's variance
    p^T J Sigma J p = alpha |J p|^2 + beta (d . J p)^2 is elementwise work on the dot products
    u . p, d . p and u . d; no 3x3 matrix is formed. Equal to `project_gaussian(*contract_gaussian(...))`.

    Args:
      origins, directions: [..., 3] rays; t0, t1: [..., S] interval bounds in units of `directions`.
      radii: [..., 1] cone radius at unit distance (or the cylinder's radius).
      basis: [K, 3] unit directions (see `basis_directions`).
      contraction: push the Gaussians through `contract` first.
      cylinder: cylinders (`cylinder_moments`) rather than conical frustums.

    Returns:
      (means [..., S, K], variances [..., S, K]) of the projections.
    """
    t_mean, t_var, r_var = (cylinder_moments if cylinder else frustum_moments)(t0, t1, radii)
    d = directions[..., None, :]
    mean = origins[..., None, :] + d * t_mean[..., None]  # [..., S, 3]
    alpha = r_var[..., None]
    beta = (t_var - r_var / jnp.sum(directions**2, axis=-1, keepdims=True))[..., None]
    mean_p = mean @ basis.T  # [..., S, K]
    d_p = (directions @ basis.T)[..., None, :]  # [..., 1, K]
    if not contraction:
        return mean_p, alpha + beta * d_p**2
    r_sq = jnp.maximum(jnp.sum(mean**2, axis=-1, keepdims=True), 1e-12)
    r = jnp.sqrt(r_sq)
    inside = r_sq <= 1
    a, b = contract_eigenvalues(r_sq)
    u_p = mean_p / r
    u_d = jnp.sum(mean * d, axis=-1, keepdims=True) / r
    jp_sq = b**2 + (a**2 - b**2) * u_p**2  # |J p|^2
    d_jp = b * d_p + (a - b) * u_p * u_d  # d . J p
    return jnp.where(inside, mean_p, (2 - 1 / r) * u_p), alpha * jp_sq + beta * d_jp**2


# --- ray distance parameterisations: normalised distance s in [0, 1] to metric t ---------------

RAY_SPACINGS = ("linear", "disparity", "power_ladder")


def power_ladder(x: jnp.ndarray, p: float, premult: float = 1.0) -> jnp.ndarray:
    """Barron's power ladder of premult * x >= 0: |p - 1| / p * ((y / |p - 1| + 1)^p - 1), y = premult * x.

    Increasing, 0 at 0, with slope premult there; for p < 0 it saturates at |p - 1| / -p, so it
    maps [0, inf) onto a bounded range (Zip-NeRF's curved ray spacing and distortion distance).
    p = 1 is the identity and p = 0 log(1 + y), the limits of the formula.
    """
    y = premult * x
    if p == 1:
        return y
    if p == 0:
        return jnp.log1p(y)
    q = abs(p - 1)
    return q / p * jnp.expm1(p * jnp.log1p(y / q))  # (y / q + 1)^p - 1, exact for small y


def power_ladder_inverse(z: jnp.ndarray, p: float, premult: float = 1.0) -> jnp.ndarray:
    """The inverse of `power_ladder` on its range; beyond the saturation value (p < 0) it is +inf
    clipped to the largest float32, so callers clip to their far distance."""
    if p == 1:
        return z / premult
    if p == 0:
        return jnp.expm1(z) / premult
    q = abs(p - 1)
    log_base = jnp.log1p(jnp.maximum(z * p / q, -1 + jnp.finfo(jnp.float32).epsneg))
    y = q * jnp.expm1(jnp.minimum(log_base / p, 80.0))  # (z p / q + 1)^(1 / p) - 1
    return y / premult


def _spacing_fn(spacing: str, power: float, premult: float):
    """g of `s_to_t` and its inverse."""
    if spacing == "disparity":
        return (lambda t: 1 / t), (lambda g: 1 / g)
    if spacing == "power_ladder":
        return (lambda t: power_ladder(t, power, premult)), (lambda g: power_ladder_inverse(g, power, premult))
    return (lambda t: t), (lambda g: g)


def s_to_t(s: jnp.ndarray, near: jnp.ndarray, far: jnp.ndarray, spacing: str, power: float = -1.5,
           premult: float = 2.0) -> jnp.ndarray:
    """Metric distance t of normalised distance s (mip-NeRF 360, sec. 3): s is linear in g(t), from
    s = 0 at near to 1 at far, with g(t) = t ("linear"), 1/t ("disparity", for near > 0), or
    `power_ladder(t, power, premult)` ("power_ladder", Zip-NeRF's curve: linear near the camera,
    like disparity far from it, and defined at near = 0).

    For disparity: t = 1 / (s / far + (1 - s) / near). near, far: [..., 1]; s: [..., S+1]. The
    power ladder's t is clipped to [near, far], and s = 1 gives far exactly: in float32 its inverse
    resolves distances up to about 1e5 (premult 2), beyond which s is 1 to float32 precision.
    """
    if spacing == "linear":
        return near + s * (far - near)
    if spacing == "disparity":
        return 1 / (s / far + (1 - s) / near)
    g, g_inv = _spacing_fn(spacing, power, premult)
    g_near, g_far = g(near), g(far)
    t = jnp.clip(g_inv(g_near + s * (g_far - g_near)), near, far)
    return jnp.where(s >= 1, far, jnp.where(s <= 0, near, t))  # the ends exactly, whatever float32 resolves


def t_to_s(t: jnp.ndarray, near: jnp.ndarray, far: jnp.ndarray, spacing: str, power: float = -1.5,
           premult: float = 2.0) -> jnp.ndarray:
    """The inverse of `s_to_t`."""
    g, _ = _spacing_fn(spacing, power, premult)
    return (g(t) - g(near)) / (g(far) - g(near))
