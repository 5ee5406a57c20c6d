"""Multiresolution hash encoding (Instant-NGP, Müller et al. 2022) with Zip-NeRF's anti-aliasing.

A grid of learned feature vectors at each of L resolutions, from `min_res` to `max_res` cells
per side in geometric progression. A level whose (res+1)^3 vertices fit its table indexes them
densely (no collisions); a finer one hashes them into a table of 2^table_log2 entries. A point's
feature at a level is the trilinear interpolation of its cell's 8 vertices. All levels' tables
are one parameter array, so the whole encoding is one gather; its gradient is the scatter-add
XLA derives.

Anti-aliasing (Zip-NeRF, Barron et al. 2023): each conical frustum is represented by a few
points that match its Gaussian's mean and covariance (`coord.frustum_multisamples`), and each
level's feature is scaled by erf(1 / sqrt(8 sigma^2 res^2)), which is 1 for cells much larger
than the point's scale sigma and falls to 0 for cells much smaller, whose features would alias.

Points outside the grid's box are clamped onto it: a point takes the features of the nearest
point of the box's surface (its coordinates clipped to [0, 1]), so the field there is the field
at the surface, not empty space. Without contraction, `grid_bound` must hold the scene.
"""

import math
from typing import NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mipnerf.model import coord

PRIMES = (1, 2654435761, 805459861)  # Instant-NGP's spatial hash: xor of coordinates times these
CORNERS = np.array([[(c >> 0) & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)], np.int32)  # [8, 3]


class Levels(NamedTuple):
    """The static layout of a hash encoding's levels, each [L] numpy.

    res: cells per side; size: table entries; offset: first entry in the shared table;
    dense: whether the level indexes its vertices directly (it fits its table).
    """

    res: np.ndarray
    size: np.ndarray
    offset: np.ndarray
    dense: np.ndarray


def levels_layout(levels: int, table_log2: int, min_res: int, max_res: int) -> Levels:
    """Resolutions floor(min_res * b^l), b = (max_res / min_res)^(1 / (L - 1)), and table sizes."""
    growth = math.exp((math.log(max_res) - math.log(min_res)) / max(levels - 1, 1))
    res = np.array([int(math.floor(min_res * growth**level + 1e-6)) for level in range(levels)], np.int64)
    vertices = (res + 1) ** 3
    size = np.minimum(vertices, 2**table_log2)
    offset = np.concatenate([[0], np.cumsum(size)[:-1]])
    return Levels(res=res, size=size, offset=offset, dense=vertices <= 2**table_log2)


def octave_levels(min_res: int, max_res: int) -> int:
    """The number of levels from min_res to max_res a factor of about 2 apart (Zip-NeRF's):
    1 + round(log2(max_res / min_res)); 16 to 512 gives 6, to 2048 8, to 8192 10."""
    return 1 + int(round(math.log2(max_res / min_res)))


def cell_and_fraction(x: jnp.ndarray, levels: Levels):
    """The cell around each point at each level, and the point's position within it.

    Args:
      x: [..., 3] points in [0, 1]^3 (clipped to it).

    Returns:
      cell: [..., L, 3] int32 in [0, res - 1]; frac: [..., L, 3] float32 in [0, 1].
    """
    res = jnp.asarray(levels.res, jnp.float32)[:, None]  # [L, 1]
    pos = jnp.clip(x, 0.0, 1.0)[..., None, :] * res  # [..., L, 3]
    cell = jnp.clip(jnp.floor(pos), 0, res - 1)
    return cell.astype(jnp.int32), pos - cell


def corner_rows(cell: jnp.ndarray, levels: Levels) -> jnp.ndarray:
    """Table rows of the 8 vertices of each cell.

    Levels are ordered coarse to fine, so the dense ones come first; each kind is computed only
    for its own levels. A hashed level's table has 2^k entries, so the hash's modulo is a mask.

    Args:
      cell: [..., L, 3] int32 lowest vertex of each level's cell.

    Returns:
      [8, ..., L] int32 rows of the shared table; corner k is cell + CORNERS[k] (x fastest).
    """
    n_dense = int(levels.dense.sum())
    batch = (1,) * (cell.ndim - 2)
    parts = []
    if n_dense:
        stride = levels.res[:n_dense].astype(np.int64) + 1  # [Ld]
        c, s = cell[..., :n_dense, :], stride.astype(np.int32)
        base = c[..., 0] + s * (c[..., 1] + s * c[..., 2])
        corner = CORNERS[:, :1] + CORNERS[:, 1:2] * stride + CORNERS[:, 2:] * stride**2  # [8, Ld]
        shift = (corner + levels.offset[:n_dense]).astype(np.int32).reshape((8,) + batch + (n_dense,))
        parts.append(base + shift)
    if n_dense < len(levels.res):
        size = levels.size[n_dense:]
        assert np.all(size == size[0]) and size[0] & (size[0] - 1) == 0, "hashed levels share a 2^k table size"
        c = cell[..., n_dense:, :].astype(jnp.uint32)
        axes = [[(c[..., a] + jnp.uint32(d)) * jnp.uint32(PRIMES[a]) for d in (0, 1)] for a in range(3)]
        mask = jnp.uint32(size[0] - 1)
        rows = jnp.stack([(axes[0][dx] ^ axes[1][dy] ^ axes[2][dz]) & mask for dx, dy, dz in CORNERS])
        parts.append(rows.astype(jnp.int32) + levels.offset[n_dense:].astype(np.int32))
    return jnp.concatenate(parts, axis=-1)


def trilinear(corners: jnp.ndarray, frac: jnp.ndarray) -> jnp.ndarray:
    """Interpolates vertex features within cells: [8, ..., L, F] (x fastest), [..., L, 3] -> [..., L, F]."""
    v = corners.reshape((2, 2, 2) + corners.shape[1:])  # [z, y, x, ..., L, F]
    f = frac[..., None]
    v = v[:, :, 0] + f[..., 0, :] * (v[:, :, 1] - v[:, :, 0])
    v = v[:, 0] + f[..., 1, :] * (v[:, 1] - v[:, 0])
    return v[0] + f[..., 2, :] * (v[1] - v[0])


def level_weights(scale: jnp.ndarray, levels: Levels) -> jnp.ndarray:
    """Zip-NeRF's down-weighting erf(1 / sqrt(8 scale^2 res^2)) of each level: [...] -> [..., L]."""
    res = jnp.asarray(levels.res, jnp.float32)
    return jax.scipy.special.erf(1 / jnp.sqrt(8 * jnp.maximum(scale[..., None] * res, 1e-10) ** 2))


class HashEncoding(nn.Module):
    """Features of points (optionally scaled Gaussians) from a multiresolution hash grid.

    `table_scale` (Zip-NeRF's preconditioning, 10): the table holds the features divided by it and
    the output is multiplied back, so that under Adam, whose steps do not depend on a parameter's
    scale, the features move `table_scale` times faster, and a decay of the table weighs
    `table_scale`^2 less on the features. `append_scale` (Zip-NeRF): each level also gives
    2 weight - 1 of its `level_weights`, scaled to the level's current feature size, as a feature.
    """

    levels: int = 12
    table_log2: int = 19
    features: int = 2
    min_res: int = 16
    max_res: int = 2048
    table_scale: float = 1.0
    append_scale: bool = False

    def out_features(self) -> int:
        """The length of the encoding of a point: levels * (features + append_scale)."""
        return self.levels * (self.features + int(self.append_scale))

    def layout(self) -> Levels:
        return levels_layout(self.levels, self.table_log2, self.min_res, self.max_res)

    @nn.compact
    def __call__(self, x: jnp.ndarray, scale: Optional[jnp.ndarray] = None) -> jnp.ndarray:
        """Encodes points.

        Args:
          x: [..., 3] in [0, 1]^3 (the grid's extent); a point outside takes the features of the
            nearest point of the box (x clipped to [0, 1]^3).
          scale: [...] each point's standard deviation in the same units, or None for points.

        Returns:
          [..., out_features()] float32: each level's interpolated feature, scaled by
          `level_weights` (then, with `append_scale`, the level's scale feature), level by level.
        """
        layout = self.layout()
        init_range = 1e-4 / self.table_scale  # features start in +-1e-4, as Instant-NGP's
        init = lambda key, shape: jax.random.uniform(key, shape, jnp.float32, -init_range, init_range)
        table = self.param("table", init, (int(layout.size.sum()), self.features))
        cell, frac = cell_and_fraction(x, layout)
        feats = trilinear(table.at[corner_rows(cell, layout)].get(mode="promise_in_bounds"), frac)
        if scale is not None:
            weights = level_weights(scale, layout)[..., None]  # [..., L, 1]
            feats = feats * weights
            if self.append_scale:
                # Scaled to the level's root-mean-square entry (no gradient through it), so that the
                # scale feature grows with the features it sits beside.
                stored = jax.lax.stop_gradient(table)
                rms = jnp.stack([jnp.sqrt(init_range**2 + jnp.mean(stored[int(o):int(o + n)] ** 2))
                                 for o, n in zip(layout.offset, layout.size)])
                feats = jnp.concatenate([feats, (2 * weights - 1) * rms[:, None]], axis=-1)
        elif self.append_scale:
            raise ValueError("append_scale: expected each point's scale")
        feats = feats * self.table_scale
        return feats.reshape(feats.shape[:-2] + (-1,))


def grid_inputs(origins, directions, t, radii, contraction: bool, bound: float, cylinder: bool = False,
                multisamples: int = 6, rotation=None, scale_mult: float = 1.0):
    """The points and scales a grid field sees for each interval, in the grid's [0, 1]^3.

    Args:
      origins, directions: [..., 3]; t: [..., S+1] interval bounds; radii: [..., 1].
      contraction: contract the points (mip-NeRF 360) and scale each point's sigma by the cube
        root of the contraction's Jacobian determinant there (Zip-NeRF); the grid then spans [-2, 2]^3.
      bound: without contraction, the grid spans [-bound, bound]^3.

      multisamples, rotation, scale_mult: the points of each frustum (`coord.frustum_multisamples`).

    Returns:
      (points [..., S, M, 3], scales [..., S, M]), M = multisamples. Points are not clipped:
      those outside [0, 1]^3 are clamped by the encoding (`HashEncoding`).
    """
    points, scales = coord.frustum_multisamples(origins, directions, t[..., :-1], t[..., 1:], radii, cylinder,
                                                multisamples, rotation, scale_mult)
    if contraction:
        scales = scales * coord.contract_volume_scale(points)
        points, bound = coord.contract(points), 2.0
    return (points + bound) / (2 * bound), scales / (2 * bound)
