"""Numpy ray tracing shared by the built-in scenes: ray-primitive intersections, procedural
texture helpers and stratified sub-pixel camera rays.

Vectors are component-first: [3, R] for R rays, or [3, 1] to broadcast one vector (a camera
centre) over them. Tracing runs in the dtype of its inputs (the scenes use float32 for images).
"""

import os

import numpy as np

F32 = np.float32
# One view per thread: numpy releases the GIL in its loops.
RENDER_THREADS = min(4, os.cpu_count() or 1)


def subpixel_directions(height: int, width: int, focal: float, spp: int) -> np.ndarray:
    """Camera-space directions (z = -1) of `spp` x `spp` stratified rays per pixel, principal point at
    the image centre.

    Sub-ray (s, t) of pixel (i, j) passes through (i + (s + 0.5) / spp, j + (t + 0.5) / spp),
    as in `camera.pixel_directions`.

    Returns:
      [height, width, spp * spp, 3] float64; entry [j, i] holds the rays of column i, row j.
    """
    offsets = (np.arange(spp) + 0.5) / spp
    u = (np.arange(width)[:, None] + offsets[None, :]).reshape(-1)  # [width * spp] in pixel units
    v = (np.arange(height)[:, None] + offsets[None, :]).reshape(-1)  # [height * spp]
    x = (u - 0.5 * width) / focal
    y = -(v - 0.5 * height) / focal
    # Axes: row j, sub-row t, column i, sub-column s.
    dirs = np.empty((height, spp, width, spp, 3))
    dirs[..., 0] = x.reshape(1, 1, width, spp)
    dirs[..., 1] = y.reshape(height, spp, 1, 1)
    dirs[..., 2] = -1.0
    return dirs.transpose(0, 2, 1, 3, 4).reshape(height, width, spp * spp, 3)


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot products [R] of component-first vectors [3, R] (either may be [3, 1])."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def hit_sphere(origins: np.ndarray, dirs: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Distance [R] along unit `dirs` [3, R] from `origins` [3, R or 1] to a sphere; inf where missed."""
    oc = origins - centre[:, None]
    b = dot(oc, dirs)
    disc = b * b - (dot(oc, oc) - radius * radius)
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    return np.where((disc >= 0.0) & (t > 0.0), t, np.inf)


def hit_box(origins: np.ndarray, dirs: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Distance [R] to an axis-aligned box [lo, hi] by the slab method; inf where missed."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dirs
        t_lo, t_hi = (lo[:, None] - origins) * inv, (hi[:, None] - origins) * inv
    t_in, t_out = np.minimum(t_lo, t_hi), np.maximum(t_lo, t_hi)
    t_near = np.maximum(np.maximum(t_in[0], t_in[1]), t_in[2])
    t_far = np.minimum(np.minimum(t_out[0], t_out[1]), t_out[2])
    return np.where((t_near <= t_far) & (t_near > 0.0), t_near, np.inf)


def through_sphere(origins: np.ndarray, dirs: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Whether each ray's forward half-line [R] meets a ball (origins inside it included): a cheap
    test that selects the rays worth intersecting with what the ball bounds."""
    oc = origins - centre[:, None]
    b = dot(oc, dirs)
    disc = b * b - (dot(oc, oc) - radius * radius)
    return (disc >= 0.0) & (np.sqrt(np.maximum(disc, 0.0)) > b)


def box_normals(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Outward unit normals [3, R] of the faces of box [lo, hi] nearest to its surface points `p` [3, R]."""
    gaps = np.concatenate([np.abs(p - lo[:, None]), np.abs(p - hi[:, None])])
    face = np.argmin(gaps, axis=0)
    normal = np.zeros_like(p)
    normal[face % 3, np.arange(p.shape[1])] = np.where(face < 3, -1.0, 1.0)
    return normal


def checker(*coords: np.ndarray) -> np.ndarray:
    """1.0 on odd cells of the integer grid in the given coordinates, else 0.0."""
    return sum(np.floor(c) for c in coords) % 2.0


def mix(a, b, w: np.ndarray) -> np.ndarray:
    """Colour `a` where `w` [R] is 0 and `b` where it is 1, as [3, R] float32."""
    a, b = np.asarray(a, F32)[:, None], np.asarray(b, F32)[:, None]
    return a + (b - a) * w
