"""3D Gaussians as 3D Gaussian splatting (Kerbl et al. 2023) stores them, and what they are.

Each splat i is a Gaussian with mean mu_i, covariance Sigma_i = R_i S_i S_i^T R_i^T (R_i from a unit
quaternion, S_i = diag(exp(log_scales_i))), an opacity sigmoid(opacity_logit_i) and a colour that
depends on the view direction through real spherical harmonics of degree d (K = (d + 1)^2
coefficients per channel): colour = max(0, sum_k c_ik Y_k(dir) + 1/2), dir the unit vector from
the camera centre to mu_i. The parametrisation (log scales, logits, quaternions w first, SH
coefficients with the 1/2 offset) is the original implementation's, so its files read as ours.
"""

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

SH_C0 = 0.28209479177387814  # 1 / (2 sqrt(pi)), the constant band
SH_C1 = 0.4886025119029199  # sqrt(3 / (4 pi))
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
         1.445305721320277, -0.5900435899266435)
MAX_SH_DEGREE = 3


class Splats(NamedTuple):
    """N Gaussians (numpy or jax arrays, float32).

    means: [N, 3]; log_scales: [N, 3]; quats: [N, 4] rotations (w, x, y, z), not necessarily unit;
    opacity_logits: [N]; sh: [N, K, 3] colour coefficients, sh[:, 0] the constant band (DC), K = (d + 1)^2.
    """

    means: np.ndarray
    log_scales: np.ndarray
    quats: np.ndarray
    opacity_logits: np.ndarray
    sh: np.ndarray

    @property
    def sh_degree(self) -> int:
        return sh_degree(self.sh.shape[-2])

    def take(self, index) -> "Splats":
        return Splats(*(x[index] for x in self))


def sh_degree(coefficients: int) -> int:
    """The degree d whose (d + 1)^2 coefficients number `coefficients`."""
    degree = int(round(np.sqrt(coefficients))) - 1
    if (degree + 1) ** 2 != coefficients or not 0 <= degree <= MAX_SH_DEGREE:
        raise ValueError(f"{coefficients} spherical-harmonic coefficients: expected (d + 1)^2 for d in 0..3")
    return degree


def sh_basis(dirs, degree: int):
    """The real spherical harmonics Y_k of the original implementation, at unit directions [..., 3].

    Returns:
      [..., (degree + 1)^2], orthonormal over the sphere.
    """
    x, y, z = dirs[..., 0], dirs[..., 1], dirs[..., 2]
    bands = [jnp.full_like(x, SH_C0)]
    if degree >= 1:
        bands += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        bands += [SH_C2[0] * x * y, SH_C2[1] * y * z, SH_C2[2] * (2 * zz - xx - yy), SH_C2[3] * x * z,
                  SH_C2[4] * (xx - yy)]
    if degree >= 3:
        bands += [SH_C3[0] * y * (3 * xx - yy), SH_C3[1] * x * y * z, SH_C3[2] * y * (4 * zz - xx - yy),
                  SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy), SH_C3[4] * x * (4 * zz - xx - yy),
                  SH_C3[5] * z * (xx - yy), SH_C3[6] * x * (xx - 3 * yy)]
    return jnp.stack(bands, axis=-1)


def sh_colors(sh, dirs):
    """Colours [..., 3] of coefficients sh [..., K, 3] seen along unit directions [..., 3]."""
    basis = sh_basis(dirs, sh_degree(sh.shape[-2]))
    return jnp.maximum(jnp.einsum("...k,...kc->...c", basis, sh) + 0.5, 0.0)


def rgb_to_sh_dc(rgb):
    """The constant-band coefficient whose colour is rgb [..., 3] from every direction."""
    return (rgb - 0.5) / SH_C0


def quat_to_rotmat(quats):
    """Rotation matrices [..., 3, 3] of quaternions [..., 4] (w, x, y, z), normalised first."""
    q = quats / jnp.linalg.norm(quats, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rows = [[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]]
    return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)


def covariances(log_scales, quats):
    """World-space covariances [N, 3, 3] = R S S^T R^T."""
    m = quat_to_rotmat(quats) * jnp.exp(log_scales)[..., None, :]
    return m @ jnp.swapaxes(m, -1, -2)


def opacities(opacity_logits):
    """Opacities in (0, 1) of logits [...]."""
    return 1.0 / (1.0 + jnp.exp(-opacity_logits))


def logit(p):
    """The opacity logit of p in (0, 1)."""
    return jnp.log(p) - jnp.log1p(-p)
