"""The splats drawn on a CPU at frame rate: `rasterize`'s forward pass as compiled loops (numba).

`rasterize` is the reference: differentiable, jitted, the same code on a CPU and a GPU. Looking at
a scene needs only its forward pass, and on a CPU XLA's array programs pay for their fixed shapes:
every (Gaussian, tile) pair is sorted, every tile's list is blended to its end in chunks, every
pixel of a tile is tried against every Gaussian of the tile. These loops do what the original's
CUDA kernels do, and less:

1. Project each Gaussian as `rasterize.project` does (EWA, the clamped Jacobian, `DILATION`, the
   reach where alpha falls under 1/255, the view-dependent colour) and cull it; its box is the
   pixels within its reach.
2. Sort the visible Gaussians by depth once (numpy), not the pairs: appending each, front to back,
   to the tiles its box meets leaves every tile's list in depth order.
3. Blend front to back under the same rules (alpha at most 0.99, skipped under 1/255, a pixel
   stopped before T falls under 1e-4): each Gaussian only at the pixels of its box that have not
   stopped, a tile left once all its pixels have; the tiles shared among threads.

`tests/test_rasterize.py` holds it to the same brute-force reference as `rasterize` (and to
`rasterize` itself). numba compiles it on first use (about 10 s) and caches it in `__pycache__`.
"""

import math
from typing import NamedTuple

import numba
import numpy as np

from mipnerf.render import gaussians, rasterize

TILE = 16  # pixels on a tile's side: with each Gaussian tried only within its box, larger tiles cost little
SH_C0, SH_C1, SH_C2, SH_C3 = gaussians.SH_C0, gaussians.SH_C1, gaussians.SH_C2, gaussians.SH_C3  # numba's constants


class Scene(NamedTuple):
    """The per-view constants of N splats, computed once: means [N, 3]; covariances [N, 6]
    (xx, xy, xz, yy, yz, zz); opacities [N]; sh [N, K, 3] (float32 numpy)."""

    means: np.ndarray
    covariances: np.ndarray
    opacities: np.ndarray
    sh: np.ndarray


def scene(splats: gaussians.Splats, sh_degree: int | None = None) -> Scene:
    """The splats' activations and world covariances, with the first (sh_degree + 1)^2 SH
    coefficients (all when None)."""
    cov = np.asarray(gaussians.covariances(np.asarray(splats.log_scales, np.float32),
                                           np.asarray(splats.quats, np.float32)))
    sh = np.asarray(splats.sh, np.float32)
    if sh_degree is not None:
        sh = sh[:, :(sh_degree + 1) ** 2]
    upper = cov[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]]
    opacity = np.asarray(gaussians.opacities(np.asarray(splats.opacity_logits, np.float32)))
    return Scene(np.ascontiguousarray(splats.means, np.float32), np.ascontiguousarray(upper, np.float32),
                 np.ascontiguousarray(opacity, np.float32), np.ascontiguousarray(sh))


def render(scene_: Scene, cam, width: int, height: int, background, tile: int = TILE):
    """One view of the splats, as `rasterize.render` draws it.

    Args:
      scene_: `scene(splats)`. cam: one pinhole camera (`Cameras` with scalar fields, numpy or jax).
      background: [3] colour behind the splats.

    Returns:
      (rgb [H, W, 3], alpha [H, W]) float32 numpy.
    """
    cam = cam._replace(camtoworlds=np.asarray(cam.camtoworlds, np.float64))  # numpy in, numpy out
    rotation, translation = rasterize.world_to_opencv(cam)
    k = cam.intrinsics
    lens = np.array([float(k.fx), float(k.fy), float(k.cx), float(k.cy)])
    splat, depths, boxes, visible = _project(
        scene_.means, scene_.covariances, scene_.opacities, scene_.sh, rotation, translation,
        np.ascontiguousarray(cam.camtoworlds[:3, 3]), lens, int(width), int(height), rasterize.NEAR_PLANE, rasterize.FOV_CLAMP,
        rasterize.DILATION, rasterize.MIN_ALPHA)
    shown = np.flatnonzero(visible)
    order = shown[np.argsort(depths[shown])]  # numpy's sort: several times faster than numba's
    starts, ids = _bin(order, boxes, int(tile), -(-int(width) // tile), -(-int(height) // tile))
    return _blend(splat, boxes, starts, ids, int(width), int(height), int(tile), np.asarray(background, np.float64),
                  rasterize.MIN_ALPHA, rasterize.MAX_ALPHA, rasterize.MIN_TRANSMITTANCE, numba.get_num_threads())


@numba.njit(cache=True)
def _sh_color(sh, i, x, y, z, out):
    """out[i, 7:10] = max(0, sum_k sh[i, k] Y_k(x, y, z) + 1/2), with `gaussians.sh_basis`'s bands."""
    count = sh.shape[1]
    xx, yy, zz = x * x, y * y, z * z
    for channel in range(3):
        c = sh[i, :, channel]
        total = 0.5 + SH_C0 * c[0]
        if count > 1:
            total += SH_C1 * (-y * c[1] + z * c[2] - x * c[3])
        if count > 4:
            total += (SH_C2[0] * x * y * c[4] + SH_C2[1] * y * z * c[5] + SH_C2[2] * (2 * zz - xx - yy) * c[6]
                      + SH_C2[3] * x * z * c[7] + SH_C2[4] * (xx - yy) * c[8])
        if count > 9:
            total += (SH_C3[0] * y * (3 * xx - yy) * c[9] + SH_C3[1] * x * y * z * c[10]
                      + SH_C3[2] * y * (4 * zz - xx - yy) * c[11] + SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * c[12]
                      + SH_C3[4] * x * (4 * zz - xx - yy) * c[13] + SH_C3[5] * z * (xx - yy) * c[14]
                      + SH_C3[6] * x * (xx - 3 * yy) * c[15])
        out[i, 7 + channel] = max(total, 0.0)


@numba.njit(cache=True, parallel=True)
def _project(means, cov, opacities, sh, rot, trans, centre, lens, width, height, near, fov_clamp, dilation,
             min_alpha):
    """Each Gaussian in the view: splat [N, 10] (its image mean x, y; conic a, b, c; opacity; the
    least exponent at which its alpha reaches min_alpha, ln(min_alpha / o); colour r, g, b), depth
    [N], the pixels it can reach, boxes [N, 4] (first and last column, first and last row); visible [N]."""
    n = means.shape[0]
    fx, fy, cx, cy = lens[0], lens[1], lens[2], lens[3]
    lim_x, lim_y = fov_clamp * 0.5 * width / fx, fov_clamp * 0.5 * height / fy
    splat, depths = np.empty((n, 10)), np.empty(n)
    boxes, visible = np.empty((n, 4), np.int64), np.zeros(n, np.bool_)
    for i in numba.prange(n):
        mx, my, mz = means[i, 0], means[i, 1], means[i, 2]
        x = rot[0, 0] * mx + rot[0, 1] * my + rot[0, 2] * mz + trans[0]
        y = rot[1, 0] * mx + rot[1, 1] * my + rot[1, 2] * mz + trans[1]
        z = rot[2, 0] * mx + rot[2, 1] * my + rot[2, 2] * mz + trans[2]
        o = opacities[i]
        if z <= near or o < min_alpha:
            continue
        tx = min(max(x / z, -lim_x), lim_x) * z
        ty = min(max(y / z, -lim_y), lim_y) * z
        # M = J W (rows m0, m1): the projection's Jacobian at the mean times the world-to-camera rotation.
        m00 = fx / z * rot[0, 0] - fx * tx / (z * z) * rot[2, 0]
        m01 = fx / z * rot[0, 1] - fx * tx / (z * z) * rot[2, 1]
        m02 = fx / z * rot[0, 2] - fx * tx / (z * z) * rot[2, 2]
        m10 = fy / z * rot[1, 0] - fy * ty / (z * z) * rot[2, 0]
        m11 = fy / z * rot[1, 1] - fy * ty / (z * z) * rot[2, 1]
        m12 = fy / z * rot[1, 2] - fy * ty / (z * z) * rot[2, 2]
        sxx, sxy, sxz, syy, syz, szz = cov[i, 0], cov[i, 1], cov[i, 2], cov[i, 3], cov[i, 4], cov[i, 5]
        # (M Sigma) rows, then Sigma' = M Sigma M^T.
        p0 = m00 * sxx + m01 * sxy + m02 * sxz
        p1 = m00 * sxy + m01 * syy + m02 * syz
        p2 = m00 * sxz + m01 * syz + m02 * szz
        q0 = m10 * sxx + m11 * sxy + m12 * sxz
        q1 = m10 * sxy + m11 * syy + m12 * syz
        q2 = m10 * sxz + m11 * syz + m12 * szz
        a = p0 * m00 + p1 * m01 + p2 * m02 + dilation
        b = p0 * m10 + p1 * m11 + p2 * m12
        c = q0 * m10 + q1 * m11 + q2 * m12 + dilation
        det = a * c - b * b
        if det <= 0:
            continue
        u, v = fx * x / z + cx, fy * y / z + cy
        reach = math.sqrt(2.0 * math.log(max(o / min_alpha, 1.0)))
        half_x, half_y = reach * math.sqrt(a), reach * math.sqrt(c)
        # Pixel centres px + 1/2 within half_x of u (and rows likewise), a pixel's margin either side.
        first_x = max(math.floor(u - half_x - 0.5), 0.0)
        last_x = min(math.floor(u + half_x - 0.5) + 1.0, width - 1.0)
        first_y = max(math.floor(v - half_y - 0.5), 0.0)
        last_y = min(math.floor(v + half_y - 0.5) + 1.0, height - 1.0)
        if not (first_x <= last_x and first_y <= last_y):
            continue
        visible[i] = True
        splat[i, 0], splat[i, 1] = u, v
        splat[i, 2], splat[i, 3], splat[i, 4] = c / det, -b / det, a / det
        # alpha >= min_alpha needs exponent >= ln(min_alpha / o): most misses are told without an exp
        # (the margin leaves the exact test to decide at the boundary).
        splat[i, 5], splat[i, 6] = o, math.log(min_alpha / o) - 1e-6
        depths[i] = z
        boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3] = first_x, last_x, first_y, last_y
        dx, dy, dz = mx - centre[0], my - centre[1], mz - centre[2]
        norm = max(math.sqrt(dx * dx + dy * dy + dz * dz), 1e-12)
        _sh_color(sh, i, dx / norm, dy / norm, dz / norm, splat)
    return splat, depths, boxes, visible


@numba.njit(cache=True)
def _bin(order, boxes, tile, tiles_x, tiles_y):
    """Every tile's Gaussians front to back, of the visible ones in depth order `order`: (starts
    [tiles + 1], ids [pairs]); tile t's are ids[starts[t]:starts[t + 1]]."""
    tiles = tiles_x * tiles_y
    counts = np.zeros(tiles + 1, np.int64)
    for i in order:
        for row in range(boxes[i, 2] // tile, boxes[i, 3] // tile + 1):
            for col in range(boxes[i, 0] // tile, boxes[i, 1] // tile + 1):
                counts[row * tiles_x + col + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    ids = np.empty(starts[-1], np.int64)
    for i in order:
        for row in range(boxes[i, 2] // tile, boxes[i, 3] // tile + 1):
            for col in range(boxes[i, 0] // tile, boxes[i, 1] // tile + 1):
                t = row * tiles_x + col
                ids[fill[t]] = i
                fill[t] += 1
    return starts, ids


@numba.njit(cache=True, parallel=True)
def _blend(splat, boxes, starts, ids, width, height, tile, background, min_alpha, max_alpha, min_transmittance,
           workers):
    """(rgb [H, W, 3], alpha [H, W]): each tile takes its Gaussians front to back, each at the pixels
    of the tile its box covers that have not stopped, until all have. Each thread takes every
    `workers`-th tile, so that busy and empty regions share out evenly."""
    tiles_x = -(-width // tile)
    tiles = tiles_x * -(-height // tile)
    rgb = np.empty((height, width, 3), np.float32)
    alpha_out = np.empty((height, width), np.float32)
    for worker in numba.prange(workers):
        transmittance = np.empty(tile * tile)  # a stopped pixel keeps its T as -T
        color = np.empty((tile * tile, 3))
        for t in range(worker, tiles, workers):
            x0, y0 = (t % tiles_x) * tile, (t // tiles_x) * tile
            x1, y1 = min(x0 + tile, width), min(y0 + tile, height)
            transmittance[:] = 1.0
            color[:] = 0.0
            left = (x1 - x0) * (y1 - y0)
            for k in range(starts[t], starts[t + 1]):
                if left == 0:
                    break
                i = ids[k]
                mx, my, ca, cb, cc, o, cut = splat[i, 0], splat[i, 1], splat[i, 2], splat[i, 3], splat[i, 4], \
                    splat[i, 5], splat[i, 6]
                for py in range(max(y0, boxes[i, 2]), min(y1, boxes[i, 3] + 1)):
                    dy = py + 0.5 - my
                    row = (py - y0) * tile - x0
                    for px in range(max(x0, boxes[i, 0]), min(x1, boxes[i, 1] + 1)):
                        before = transmittance[row + px]
                        if before < 0.0:
                            continue
                        dx = px + 0.5 - mx
                        power = -0.5 * (ca * dx * dx + cc * dy * dy) - cb * dx * dy
                        if power > 0.0 or power < cut:
                            continue
                        alpha = min(max_alpha, o * math.exp(power))
                        if alpha < min_alpha:
                            continue
                        after = before * (1.0 - alpha)
                        if after < min_transmittance:  # the pixel stops before this Gaussian
                            transmittance[row + px] = -before
                            left -= 1
                            continue
                        weight = alpha * before
                        for channel in range(3):
                            color[row + px, channel] += weight * splat[i, 7 + channel]
                        transmittance[row + px] = after
            for py in range(y0, y1):
                for px in range(x0, x1):
                    at = (py - y0) * tile + px - x0
                    final = abs(transmittance[at])
                    for channel in range(3):
                        rgb[py, px, channel] = color[at, channel] + final * background[channel]
                    alpha_out[py, px] = 1.0 - final
    return rgb, alpha_out
