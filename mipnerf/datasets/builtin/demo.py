"""The built-in demo scene: a few analytic shapes ray-traced into a nerf_synthetic folder.

The scene sits within radius 1.25 of the origin: a checkered ground disc, a large sphere with
a checker in spherical coordinates at the origin, a solid-checkered box and a small striped
sphere, lit by a fixed directional light (with shadows) plus ambient light. Cameras lie on the
upper hemisphere at radius 4 and look at the origin with world +Z up. Pixels where no shape
is hit are transparent. Every pixel averages `spp` x `spp` stratified sub-pixel rays, so the
white-composited image is the area average of the white-composited scene.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from mipnerf.cameras.camera import focal_from_fov
from mipnerf.cameras.orbits import look_at
from mipnerf.datasets.builtin import raytrace
from mipnerf.datasets.builtin.raytrace import box_normals, checker, dot, hit_box, hit_sphere, mix
from mipnerf.datasets.builtin.scene_cache import cached_scene

# Bump when the scene, its cameras or its defaults change, so stale caches are not reused.
VERSION = "v1"

CAMERA_ANGLE_X = 0.6911112070083618  # that of Blender's lego scene
CAMERA_RADIUS = 4.0
MIN_ELEVATION, MAX_ELEVATION = np.radians(10.0), np.radians(80.0)
GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))
SPLIT_PHASES = {"train": 0.0, "val": 1.0, "test": 2.0}  # azimuth offsets, radians

# Tracing runs in float32, one view per thread (numpy releases the GIL in its loops).
_F32 = raytrace.F32
_RENDER_THREADS = raytrace.RENDER_THREADS

# Shapes: 0 ground disc, 1 large sphere, 2 box, 3 small sphere.
DISC_Z, DISC_RADIUS = -0.5, 1.1
BIG_CENTRE, BIG_RADIUS = np.array([0.0, 0.0, 0.0], _F32), 0.5
BOX_LO, BOX_HI = np.array([0.3, -0.8, -0.5], _F32), np.array([0.7, -0.4, 0.1], _F32)
SMALL_CENTRE, SMALL_RADIUS = np.array([-0.55, 0.5, -0.28], _F32), 0.22
SCENE_RADIUS = 1.25  # bounds every shape; cameras at radius 4 see all of this sphere

LIGHT = (np.array([-0.4, -0.5, 1.0]) / np.linalg.norm([-0.4, -0.5, 1.0])).astype(_F32)  # towards the light
AMBIENT = 0.35
SHADOW_OFFSET = 1e-4


def demo_scene_dir(cache_dir: str | None = None) -> Path:
    """The folder holding the demo scene in the nerf_synthetic format, rendered on first use
    (see `scene_cache.cached_scene`)."""
    return cached_scene(f"demo_{VERSION}", render_demo_scene, cache_dir, "the demo scene")


def render_demo_scene(
    out_dir, size: int = 100, n_train: int = 100, n_val: int = 20, n_test: int = 20, spp: int = 4
) -> None:
    """Renders the demo scene into `out_dir` in the nerf_synthetic format.

    Writes `transforms_{train,val,test}.json` and `{split}/r_{k}.png` ([size, size] RGBA, 8-bit).
    `spp` x `spp` stratified rays are averaged per pixel.
    """
    out_dir = Path(out_dir)
    cam_dirs = subpixel_directions(size, focal_from_fov(size, CAMERA_ANGLE_X), spp).astype(_F32)
    with ThreadPoolExecutor(_RENDER_THREADS) as pool:
        for split, count in (("train", n_train), ("val", n_val), ("test", n_test)):
            (out_dir / split).mkdir(parents=True, exist_ok=True)
            poses = camera_poses(count, SPLIT_PHASES[split])
            frames = []
            views = pool.map(lambda c2w: render_view(c2w, cam_dirs), poses)
            for k, (c2w, rgba) in enumerate(zip(poses, views)):
                Image.fromarray(rgba, "RGBA").save(out_dir / split / f"r_{k}.png")
                frames.append({"file_path": f"./{split}/r_{k}", "transform_matrix": c2w.tolist()})
            meta = {"camera_angle_x": CAMERA_ANGLE_X, "frames": frames}
            (out_dir / f"transforms_{split}.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def camera_poses(count: int, phase: float) -> np.ndarray:
    """Cameras on a spiral over the band of elevations, evenly spread in area.

    Returns:
      [count, 4, 4] float64 camera-to-world matrices looking at the origin, world +Z up.
    """
    k = np.arange(count)
    lo, hi = np.sin(MIN_ELEVATION), np.sin(MAX_ELEVATION)
    elevation = np.arcsin(lo + (k + 0.5) / count * (hi - lo))
    azimuth = k * GOLDEN_ANGLE + phase
    eyes = CAMERA_RADIUS * np.stack(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], axis=-1
    )
    return np.stack([look_at(eye) for eye in eyes])


def subpixel_directions(size: int, focal: float, spp: int) -> np.ndarray:
    """Camera-space directions (z = -1) of `spp` x `spp` stratified rays per pixel of a square image.

    Returns:
      [size, size, spp * spp, 3] float64 (see `raytrace.subpixel_directions`).
    """
    return raytrace.subpixel_directions(size, size, focal, spp)


def _hit_disc(origins: np.ndarray, dirs: np.ndarray, z: float, radius: float) -> np.ndarray:
    """Distance [R] to a horizontal disc centred on the z axis at height `z`; inf where missed."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (z - origins[2]) / dirs[2]
    x, y = origins[0] + t * dirs[0], origins[1] + t * dirs[1]
    return np.where((t > 0.0) & (x * x + y * y <= radius * radius), t, np.inf)


def _hits(origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Distances [4, R] to each shape in order: disc, large sphere, box, small sphere."""
    return np.stack([
        _hit_disc(origins, dirs, DISC_Z, DISC_RADIUS),
        hit_sphere(origins, dirs, BIG_CENTRE, BIG_RADIUS),
        hit_box(origins, dirs, BOX_LO, BOX_HI),
        hit_sphere(origins, dirs, SMALL_CENTRE, SMALL_RADIUS),
    ])


def _surface(shape: int, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals [3, R] and albedos [3, R] of shape `shape` at its surface points `p` [3, R]."""
    if shape == 0:  # ground disc: cream and slate checker
        normal = np.broadcast_to(np.array([0.0, 0.0, 1.0], _F32)[:, None], p.shape)
        return normal, mix([0.93, 0.9, 0.82], [0.35, 0.42, 0.55], checker(p[0] / 0.25 + 0.5, p[1] / 0.25 + 0.5))
    if shape == 1:  # large sphere: red and yellow checker in longitude and latitude
        normal = (p - BIG_CENTRE[:, None]) / BIG_RADIUS
        lon = np.arctan2(normal[1], normal[0]) / (2.0 * np.pi) * 12.0
        lat = np.arccos(np.clip(normal[2], -1.0, 1.0)) / np.pi * 6.0
        return normal, mix([0.85, 0.15, 0.1], [0.98, 0.8, 0.15], checker(lon, lat))
    if shape == 2:  # box: blue and cyan solid checker, cells aligned with its faces
        normal = box_normals(p, BOX_LO, BOX_HI)
        cells = (p - BOX_LO[:, None]) / 0.1 + 0.5
        return normal, mix([0.1, 0.25, 0.8], [0.45, 0.85, 0.95], checker(cells[0], cells[1], cells[2]))
    # small sphere: green and magenta bands along z
    normal = (p - SMALL_CENTRE[:, None]) / SMALL_RADIUS
    return normal, mix([0.2, 0.75, 0.3], [0.8, 0.25, 0.75], checker(normal[2] * 3.0 + 0.5))


def _shade(points: np.ndarray, shape_ids: np.ndarray) -> np.ndarray:
    """Lambertian colours [3, R] of surface points `points` [3, R] on shapes `shape_ids` [R]."""
    normals, albedo = np.empty_like(points), np.empty_like(points)
    for shape in range(4):
        sel = shape_ids == shape
        normals[:, sel], albedo[:, sel] = _surface(shape, points[:, sel])
    cosine = np.maximum(dot(normals, LIGHT[:, None]), 0.0)
    lit = np.flatnonzero(cosine > 0.0)
    shadow_origins = points[:, lit] + SHADOW_OFFSET * normals[:, lit]
    blocked = np.isfinite(_hits(shadow_origins, np.broadcast_to(LIGHT[:, None], shadow_origins.shape)).min(axis=0))
    cosine[lit[blocked]] = 0.0
    return albedo * (AMBIENT + (1.0 - AMBIENT) * cosine)


def _trace(origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hits of rays from `origin` [3, 1] along unit `dirs` [3, R].

    Returns:
      Distances [R] (inf where nothing is hit) and the index [R] of the shape hit.
    """
    t, shape_ids = np.full(dirs.shape[1], np.inf, _F32), np.zeros(dirs.shape[1], np.int64)
    # Only rays through the scene's bounding sphere can hit anything.
    near = np.flatnonzero(np.isfinite(hit_sphere(origin, dirs, np.zeros(3, _F32), SCENE_RADIUS)))
    dists = _hits(origin, dirs[:, near])
    t[near], shape_ids[near] = np.min(dists, axis=0), np.argmin(dists, axis=0)
    return t, shape_ids


def render_view(c2w: np.ndarray, cam_dirs: np.ndarray) -> np.ndarray:
    """Ray-traces one view, averaging the sub-pixel rays of each pixel.

    Args:
      c2w: [4, 4] camera-to-world matrix.
      cam_dirs: [H, W, S, 3] float32 camera-space directions of S rays per pixel.

    Returns:
      [H, W, 4] uint8 RGBA; alpha is the pixel's covered fraction, and colour is such that
      compositing on white gives the average of the white-composited sub-rays.
    """
    height, width, samples = cam_dirs.shape[:3]
    dirs = c2w[:3, :3].astype(_F32) @ cam_dirs.reshape(-1, 3).T  # [3, R]
    dirs /= np.sqrt(dot(dirs, dirs))
    origin = c2w[:3, 3:4].astype(_F32)
    t, shape_ids = _trace(origin, dirs)
    hit = np.flatnonzero(np.isfinite(t))
    white = np.ones_like(dirs)
    white[:, hit] = _shade(origin + t[hit] * dirs[:, hit], shape_ids[hit])
    white = white.reshape(3, height, width, samples).mean(axis=-1).transpose(1, 2, 0)
    alpha = np.isfinite(t).reshape(height, width, samples).mean(axis=-1, dtype=_F32)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rgb = np.where(alpha > 0.0, (white - (1.0 - alpha)) / alpha, 0.0)
    rgba = np.concatenate([np.clip(rgb, 0.0, 1.0), alpha], axis=-1)
    return np.round(rgba * 255.0).astype(np.uint8)
