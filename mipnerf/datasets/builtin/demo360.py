"""The built-in unbounded demo scene: an analytic outdoor scene ray-traced into a capture laid
out as the mip-NeRF 360 releases are (images and a COLMAP model).

Scene (its own frame: +z up, ground at z = 0):
- a few textured shapes standing near the centre, within radius ~1.1 of the z axis: a large
  sphere checkered in longitude and latitude, a box with a solid checker, a small banded
  sphere, a thin striped post and a low checkered block;
- an infinite ground plane to the horizon: a checker with a slow colour variation, box-filtered
  over each ray's footprint (so that it averages out in the distance instead of aliasing) and
  fading into a haze colour far from the centre;
- a few tall striped pillars and a sphere on the ground at radius 5.5 to 14;
- a sky at infinity that depends only on the ray direction: a horizon-to-zenith gradient, a glow
  around the sun and procedural clouds. Rays that hit nothing see the sky; images are opaque RGB.
Lighting is Lambertian: one directional light (the sun) with shadows plus ambient light. Every
pixel averages `spp` x `spp` stratified sub-pixel rays.

Cameras: a full ring around the centre at radius 2.5 to 3.5 and height 0.6 to 1.4, each looking
slightly down (8 to 16 degrees) at a point near the z axis, with small jitter and roll like a
handheld capture; one pinhole camera (vertical FOV `CAMERA_ANGLE_Y`) for every view. With
`forward`, a forward-facing capture in the LLFF manner instead (`forward_poses`): cameras on a
small jittered grid in front of the central shapes, all looking the same way past them at the
far pillars and the sky.

On disk (the mip-NeRF 360 / COLMAP layout):
```
images/IMG_0000.png ...     [height, width] 8-bit RGB, in capture order
images_2/IMG_0000.png ...   the same views at half size: 2x2 block means of the float render
sparse/0/cameras.bin images.bin points3D.bin
poses_bounds.npy            [N, 17] LLFF poses and near/far bounds, rows in image-name order
transforms.json             with `transforms`: the same cameras as ns-process-data writes them
```
Like a real reconstruction, the COLMAP model is in its own arbitrary frame: every pose and point
is mapped from the scene frame by the similarity `COLMAP_FROM_SCENE` (rotation `COLMAP_ROTATION`,
which tilts "up" away from every axis, scale `COLMAP_SCALE`, translation `COLMAP_TRANSLATION`).
The model holds one PINHOLE camera and, per image, the 2D projections of the surface points it
sees unoccluded: points sampled over the shapes and the ground (`POINT_DENSITY` per unit area),
of which those seen by at least `MIN_TRACK` views are kept, coloured as the scene shades them.

transforms.json (nerfstudio's dialect) holds the camera as an OPENCV camera with zero
distortion and each view's OpenGL camera-to-world matrix in the COLMAP frame moved by
nerfstudio's `applied_transform` (`NERFSTUDIO_APPLIED`), which the file records, in capture order.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image as PILImage

from mipnerf.cameras.conventions import camtoworld_to_colmap, colmap_to_camtoworld, quaternion_to_matrix
from mipnerf.cameras.orbits import axis_angle, look_at
from mipnerf.datasets import colmap_model, scene_frame
from mipnerf.datasets.builtin.raytrace import (F32, RENDER_THREADS, box_normals, checker, dot, hit_box, hit_sphere, mix,
                                               subpixel_directions, through_sphere)
from mipnerf.datasets.builtin.scene_cache import cached_scene

# Bump when the scene, its cameras, its points or its defaults change, so stale caches are not reused.
VERSION = "v1"

WIDTH, HEIGHT, N_IMAGES, SPP = 192, 128, 120, 3
CAMERA_ANGLE_Y = np.radians(50.0)  # vertical field of view
RING_RADIUS = (2.5, 3.5)
RING_HEIGHT = (0.6, 1.4)
PITCH = np.radians((8.0, 16.0))  # how far each camera looks down
AIM_JITTER = 0.12  # the looked-at point's offset from the z axis, at most
ROLL_JITTER = np.radians(2.0)
CAMERA_SEED, POINT_SEED = 360, 361

# The similarity from the scene frame to the COLMAP model's frame: x -> s R x + t.
COLMAP_SCALE = 2.7
COLMAP_TRANSLATION = np.array([-1.9, 3.4, 0.8])


COLMAP_ROTATION = axis_angle([0.42, -0.61, 0.67], 1.1)
COLMAP_FROM_SCENE = np.eye(4)
COLMAP_FROM_SCENE[:3, :3], COLMAP_FROM_SCENE[:3, 3] = COLMAP_SCALE * COLMAP_ROTATION, COLMAP_TRANSLATION
# What ns-process-data applies to COLMAP's world (y and z swapped, z negated) and records in transforms.json.
NERFSTUDIO_APPLIED = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0]])

# Light: the sun, towards which LIGHT points.
LIGHT = (np.array([0.5, -0.45, 0.75]) / np.linalg.norm([0.5, -0.45, 0.75])).astype(F32)
AMBIENT = 0.3
SHADOW_OFFSET = 1e-3

# Ground: GROUND_CELL-sized checker tiles of two colours, tinted by a slow wave, fading into the
# haze colour with distance from the z axis over HAZE_DISTANCE.
GROUND_CELL = 0.5
GROUND_COLOURS = ([0.82, 0.77, 0.62], [0.45, 0.52, 0.38])
GROUND_TINTS = ([1.08, 0.96, 0.84], [0.84, 1.0, 1.08])
GROUND_WAVES = ((0.9, 0.5, 0.3), (-0.4, 0.75, 1.7))  # (kx, ky, phase) of each wave
HAZE, HAZE_DISTANCE = [0.93, 0.96, 1.0], 25.0

# Sky: colours at the horizon and the zenith, the sun's glow and the clouds.
SKY_HORIZON, SKY_ZENITH = [0.84, 0.88, 0.93], [0.22, 0.42, 0.78]
SUN_GLOW = [0.3, 0.24, 0.14]
CLOUD = [0.98, 0.98, 0.98]


class Shape(NamedTuple):
    """A sphere (a: centre, b: radius) or an axis-aligned box (a: lo, b: hi) and its texture: a
    checker of two `colours` in a `pattern` ("lonlat", "bands", "cells" or "stripes") of `scale`."""

    kind: str
    a: np.ndarray
    b: np.ndarray | float
    colours: tuple
    pattern: str
    scale: tuple


def _sphere(centre, radius, colours, pattern, scale) -> Shape:
    return Shape("sphere", np.array(centre, F32), float(radius), colours, pattern, scale)


def _box(lo, hi, colours, pattern, scale) -> Shape:
    return Shape("box", np.array(lo, F32), np.array(hi, F32), colours, pattern, scale)


def _pillar(azimuth_deg: float, radius: float, half_width: float, height: float, colours, pattern, scale) -> Shape:
    """A box standing on the ground with its axis at `radius` from the z axis."""
    centre = radius * np.array([np.cos(np.radians(azimuth_deg)), np.sin(np.radians(azimuth_deg))])
    return _box([*(centre - half_width), 0.0], [*(centre + half_width), height], colours, pattern, scale)


# Shape index 0 is the ground; the shapes below are 1, 2, ...
CENTRAL = (
    _sphere([0.0, 0.05, 0.5], 0.5, ([0.85, 0.15, 0.1], [0.98, 0.8, 0.15]), "lonlat", (12.0, 6.0)),
    _box([0.3, -0.85, 0.0], [0.8, -0.35, 0.55], ([0.1, 0.25, 0.8], [0.45, 0.85, 0.95]), "cells", (0.125,)),
    _sphere([-0.6, 0.55, 0.25], 0.25, ([0.2, 0.75, 0.3], [0.8, 0.25, 0.75]), "bands", (3.0,)),
    _box([-0.75, -0.55, 0.0], [-0.5, -0.3, 0.9], ([0.95, 0.93, 0.88], [0.95, 0.5, 0.1]), "stripes", (0.15,)),
    _box([0.45, 0.35, 0.0], [0.85, 0.75, 0.2], ([0.55, 0.3, 0.7], [0.92, 0.9, 0.95]), "cells", (0.1,)),
)
CENTRAL_BOUND = (np.array([0.0, 0.0, 0.4], F32), 1.25)  # a ball around every central shape
FAR = (
    _pillar(20.0, 6.0, 0.4, 3.0, ([0.75, 0.2, 0.2], [0.95, 0.9, 0.85]), "stripes", (0.5,)),
    _pillar(75.0, 9.0, 0.6, 4.5, ([0.25, 0.35, 0.65], [0.9, 0.85, 0.6]), "stripes", (0.6,)),
    _pillar(130.0, 5.5, 0.35, 2.0, ([0.2, 0.55, 0.5], [0.9, 0.9, 0.9]), "cells", (0.35,)),
    _pillar(190.0, 12.0, 0.8, 5.0, ([0.6, 0.45, 0.3], [0.3, 0.25, 0.2]), "stripes", (0.8,)),
    _pillar(245.0, 7.0, 0.5, 3.5, ([0.95, 0.75, 0.2], [0.35, 0.3, 0.45]), "cells", (0.5,)),
    _pillar(300.0, 14.0, 0.9, 4.0, ([0.7, 0.7, 0.75], [0.4, 0.15, 0.3]), "stripes", (0.7,)),
    _pillar(340.0, 8.5, 0.45, 2.5, ([0.3, 0.6, 0.25], [0.85, 0.95, 0.6]), "stripes", (0.4,)),
    _sphere([10.0 * np.cos(np.radians(160.0)), 10.0 * np.sin(np.radians(160.0)), 1.2], 1.2,
            ([0.9, 0.55, 0.6], [0.35, 0.2, 0.5]), "lonlat", (8.0, 4.0)),
)
SHAPES = CENTRAL + FAR

# Surface points for the COLMAP model, per unit area: central shapes, far shapes, the ground
# within NEAR_GROUND of the z axis, and the ground out to FAR_GROUND.
POINT_DENSITY = {"central": 150.0, "far": 10.0, "near ground": 30.0, "far ground": 1.0}
NEAR_GROUND, FAR_GROUND = 4.5, 16.0
MIN_TRACK = 2  # views that must see a point for it to be kept


def demo360_scene_dir(cache_dir: str | None = None, transforms: bool = False) -> Path:
    """The folder holding the unbounded demo scene in the mip-NeRF 360 layout, rendered on first use
    (see `scene_cache.cached_scene`); with `transforms`, a folder that also holds its transforms.json."""
    if transforms:
        return cached_scene(f"demo360_transforms_{VERSION}", lambda out: render_demo360_scene(out, transforms=True),
                            cache_dir, "the unbounded demo scene")
    return cached_scene(f"demo360_{VERSION}", render_demo360_scene, cache_dir, "the unbounded demo scene")


def focal_length(height: int) -> float:
    """Focal length in pixels of the scene's camera for images `height` pixels tall."""
    return 0.5 * height / np.tan(0.5 * CAMERA_ANGLE_Y)


def render_demo360_scene(out_dir, width: int = WIDTH, height: int = HEIGHT, n_images: int = N_IMAGES,
                         spp: int = SPP, transforms: bool = False, forward: bool = False) -> None:
    """Renders the scene into `out_dir` in the mip-NeRF 360 layout (see the module docstring).

    `width` and `height` (even) are those of images/; `spp` x `spp` stratified rays are averaged per pixel.
    With `transforms`, also writes transforms.json, as ns-process-data would from the COLMAP model.
    With `forward`, the cameras are a forward-facing capture's (`forward_poses`) instead of the ring.
    """
    if width % 2 or height % 2:
        raise ValueError(f"image size {width}x{height} must be even, for images_2/")
    if n_images < MIN_TRACK:
        raise ValueError(f"{n_images} views cannot see a 3D point {MIN_TRACK} times; expected at least {MIN_TRACK}")
    out_dir = Path(out_dir)
    focal = focal_length(height)
    cam_dirs = subpixel_directions(height, width, focal, spp).astype(F32)
    c2ws = forward_poses(n_images) if forward else camera_poses(n_images)
    names = [f"IMG_{k:04d}.png" for k in range(n_images)]
    for folder in ("images", "images_2"):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(RENDER_THREADS) as pool:
        views = pool.map(lambda c2w: render_view(c2w, cam_dirs, 1.0 / (focal * spp)), c2ws)
        for name, rgb in zip(names, views):
            half = rgb.reshape(height // 2, 2, width // 2, 2, 3).mean(axis=(1, 3))
            PILImage.fromarray(_to_8bit(rgb), "RGB").save(out_dir / "images" / name)
            PILImage.fromarray(_to_8bit(half), "RGB").save(out_dir / "images_2" / name)
    model, bounds = colmap_reconstruction(c2ws, names, width, height, focal)
    colmap_model.write_model(model, out_dir / "sparse" / "0")
    np.save(out_dir / "poses_bounds.npy", poses_bounds(model, bounds))
    if transforms:
        meta = transforms_json(scene_frame.transform_poses(COLMAP_FROM_SCENE, c2ws), names, width, height, focal)
        (out_dir / "transforms.json").write_text(json.dumps(meta, indent=1))


def _to_8bit(rgb: np.ndarray) -> np.ndarray:
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def camera_poses(count: int) -> np.ndarray:
    """The ring of handheld-like cameras, in capture order.

    Returns:
      [count, 4, 4] float64 camera-to-world matrices in the scene frame (OpenGL convention).
    """
    jitter = np.random.default_rng(CAMERA_SEED).uniform(-1.0, 1.0, size=(count, 7))
    azimuth = 2.0 * np.pi * (np.arange(count) + 0.3 * jitter[:, 0]) / count
    wave = lambda k, phase, noise: 0.6 * np.sin(k * azimuth + phase) + 0.4 * noise  # in [-1, 1]
    radius = np.mean(RING_RADIUS) + 0.5 * np.ptp(RING_RADIUS) * wave(2.0, 0.4, jitter[:, 1])
    height = np.mean(RING_HEIGHT) + 0.5 * np.ptp(RING_HEIGHT) * wave(3.0, 1.3, jitter[:, 2])
    pitch = np.mean(PITCH) + 0.5 * np.ptp(PITCH) * jitter[:, 3]
    poses = []
    for k in range(count):
        eye = np.array([radius[k] * np.cos(azimuth[k]), radius[k] * np.sin(azimuth[k]), height[k]])
        aim = AIM_JITTER * jitter[k, 4:6]
        target = np.array([*aim, height[k] - np.linalg.norm(eye[:2] - aim) * np.tan(pitch[k])])
        c2w = look_at(eye, target)
        roll = ROLL_JITTER * jitter[k, 6]
        c2w[:3, :2] = c2w[:3, :2] @ np.array([[np.cos(roll), np.sin(roll)], [-np.sin(roll), np.cos(roll)]])
        poses.append(c2w)
    return np.stack(poses)


FORWARD_CENTRE = np.array([0.0, -3.2, 0.9])  # the middle of the forward-facing cameras' grid
FORWARD_SPAN = np.array([1.0, 0.5])  # its width (x) and height (z)
FORWARD_TARGET = np.array([0.0, 0.0, 0.5])  # every camera looks the way the middle one looks at this point
FORWARD_TURN = np.radians(1.5)  # each camera is turned off that direction by up to this, like a handheld capture


def forward_poses(count: int) -> np.ndarray:
    """A forward-facing capture's cameras (LLFF's kind): on a jittered grid of about 3:2 spanning
    `FORWARD_SPAN` around `FORWARD_CENTRE`, facing +y at the central shapes, with the far pillars
    and the sky behind them; each camera a little turned.

    Returns:
      [count, 4, 4] float64 camera-to-world matrices in the scene frame (OpenGL convention).
    """
    jitter = np.random.default_rng(CAMERA_SEED).uniform(-1.0, 1.0, size=(count, 4))
    cols = int(np.ceil(np.sqrt(1.5 * count)))
    rows = int(np.ceil(count / cols))
    k = np.arange(count)
    u = ((k % cols + 0.5 + 0.3 * jitter[:, 0]) / cols - 0.5) * FORWARD_SPAN[0]
    v = ((k // cols + 0.5 + 0.3 * jitter[:, 1]) / rows - 0.5) * FORWARD_SPAN[1]
    base = look_at(FORWARD_CENTRE, FORWARD_TARGET)
    poses = []
    for n in range(count):
        c2w = base.copy()
        c2w[:3, 3] = FORWARD_CENTRE + np.array([u[n], 0.0, v[n]])
        yaw, pitch = FORWARD_TURN * jitter[n, 2], FORWARD_TURN * jitter[n, 3]
        turn_y = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        turn_x = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
        c2w[:3, :3] = c2w[:3, :3] @ turn_y @ turn_x
        poses.append(c2w)
    return np.stack(poses)


# --- tracing ------------------------------------------------------------------------------------


def _hit_ground(origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Distance [R] to the ground plane z = 0 from above it; inf where missed."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -origins[2] / dirs[2]
    return np.where((dirs[2] < 0.0) & (origins[2] > 0.0), t, np.inf)


def _hit_shape(shape: Shape, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    if shape.kind == "sphere":
        return hit_sphere(origins, dirs, shape.a, shape.b)
    return hit_box(origins, dirs, shape.a, shape.b)


def _bounding_ball(shape: Shape) -> tuple[np.ndarray, float]:
    if shape.kind == "sphere":
        return shape.a, shape.b
    return 0.5 * (shape.a + shape.b), 0.5 * float(np.linalg.norm(shape.b - shape.a))


def _hits(origins: np.ndarray, dirs: np.ndarray, ground: bool = True) -> np.ndarray:
    """Distances [1 + len(SHAPES), R] to the ground (inf without `ground`) and to each shape.

    Only the rays that pass through a shape's bounding ball (the central shapes share one) are
    intersected with it.
    """
    count = dirs.shape[1]
    dists = np.full((1 + len(SHAPES), count), np.inf, dirs.dtype)
    if ground:
        dists[0] = _hit_ground(origins, dirs)
    groups = [(CENTRAL_BOUND, range(1, 1 + len(CENTRAL)))]
    groups += [(_bounding_ball(shape), [1 + len(CENTRAL) + k]) for k, shape in enumerate(FAR)]
    for (centre, radius), members in groups:
        sel = np.flatnonzero(through_sphere(origins, dirs, centre, radius))
        sub_origins = origins if origins.shape[1] == 1 else origins[:, sel]
        for s in members:
            dists[s, sel] = _hit_shape(SHAPES[s - 1], sub_origins, dirs[:, sel])
    return dists


def trace(origins: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hits of rays from `origins` [3, R or 1] along unit `dirs` [3, R].

    Returns:
      Distances [R] (inf where nothing is hit) and the index [R] of the shape hit (0: the ground).
    """
    dists = _hits(origins, dirs)
    return dists.min(axis=0), dists.argmin(axis=0)


# --- textures and shading -----------------------------------------------------------------------


def _filtered_checker(x: np.ndarray, y: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """The 2D unit checker (1 on odd cells) box-filtered over footprints [R] of widths `wx`, `wy`."""

    def square_wave_mean(u, w):  # mean of sign(the unit square wave) over [u - w/2, u + w/2]
        tri = lambda v: np.abs(v * 0.5 - np.floor(v * 0.5) - 0.5)
        return 2.0 * (tri(u - 0.5 * w) - tri(u + 0.5 * w)) / w

    return 0.5 - 0.5 * square_wave_mean(x, wx) * square_wave_mean(y, wy)


def _ground_albedo(p: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Albedo [3, R] of the ground at points `p` [3, R], averaged over footprints [2, R] (x and y widths)."""
    w = np.maximum(footprint, F32(1e-4)) / F32(GROUND_CELL)
    tiles = mix(*GROUND_COLOURS, _filtered_checker(p[0] / F32(GROUND_CELL), p[1] / F32(GROUND_CELL), w[0], w[1]))
    wave = F32(0.5)
    for kx, ky, phase in GROUND_WAVES:  # box-filtered sinusoids: a sinc factor per axis
        damp = np.sinc(kx * footprint[0] / (2.0 * np.pi)) * np.sinc(ky * footprint[1] / (2.0 * np.pi))
        wave = wave + F32(0.25) * damp * np.sin(F32(kx) * p[0] + F32(ky) * p[1] + F32(phase))
    haze = 1.0 - np.exp(-np.sqrt(p[0] * p[0] + p[1] * p[1]) / F32(HAZE_DISTANCE))
    return _colour(HAZE) * haze + tiles * mix(*GROUND_TINTS, wave) * (1.0 - haze)


def _ground_footprint(origin: np.ndarray, rays: np.ndarray, step_x: np.ndarray, step_y: np.ndarray) -> np.ndarray:
    """Extents [2, R] along x and y of the patch of ground that each sub-ray covers: |dp/di| + |dp/dj|
    per axis, from the hit points of the next sub-rays along the image's columns i and rows j.

    rays: [3, R] unnormalised directions (from `origin` [3, 1]) that hit the ground; step_x,
    step_y: [3] the change of a direction from one sub-ray to the next along the image's axes.
    A neighbour that misses the ground (towards the horizon) makes the footprint huge.
    """
    hit = lambda d: origin + (-origin[2] / np.minimum(d[2], F32(-1e-12))) * d
    p = hit(rays)
    widths = np.zeros((2, rays.shape[1]), F32)
    for step in (step_x, step_y):
        q = rays + step[:, None]
        edge = np.where(q[2] < 0.0, np.abs(hit(q)[:2] - p[:2]), F32(1e6))
        widths += np.minimum(edge, F32(1e6))
    return widths


def _surface(shape: Shape, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals [3, R] and albedos [3, R] of `shape` at its surface points `p` [3, R]."""
    if shape.kind == "sphere":
        normal = (p - shape.a[:, None]) / F32(shape.b)
        if shape.pattern == "lonlat":
            lon = np.arctan2(normal[1], normal[0]) / F32(2.0 * np.pi) * F32(shape.scale[0])
            lat = np.arccos(np.clip(normal[2], -1.0, 1.0)) / F32(np.pi) * F32(shape.scale[1])
            return normal, mix(*shape.colours, checker(lon, lat))
        return normal, mix(*shape.colours, checker(normal[2] * F32(shape.scale[0]) + F32(0.5)))
    normal = box_normals(p, shape.a, shape.b)
    cells = (p - shape.a[:, None]) / F32(shape.scale[0])
    if shape.pattern == "cells":
        return normal, mix(*shape.colours, checker(cells[0] + 0.5, cells[1] + 0.5, cells[2] + 0.5))
    return normal, mix(*shape.colours, checker(cells[2]))


def _shade(points: np.ndarray, shape_ids: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Lambertian colours [3, R] of surface points `points` [3, R] on shapes `shape_ids` [R].

    footprint: [2, R] ground footprints (see `_ground_footprint`) of the points on the ground.
    """
    normals, albedo = np.empty_like(points), np.empty_like(points)
    ground = shape_ids == 0
    normals[:, ground] = np.array([0.0, 0.0, 1.0], points.dtype)[:, None]
    albedo[:, ground] = _ground_albedo(points[:, ground], footprint[:, ground])
    for s in np.unique(shape_ids[~ground]):
        sel = shape_ids == s
        normals[:, sel], albedo[:, sel] = _surface(SHAPES[s - 1], points[:, sel])
    cosine = np.maximum(dot(normals, LIGHT[:, None]), 0.0)
    lit = np.flatnonzero(cosine > 0.0)
    origins = points[:, lit] + F32(SHADOW_OFFSET) * normals[:, lit]
    light = np.broadcast_to(LIGHT[:, None], origins.shape).astype(points.dtype)
    blocked = np.isfinite(_hits(origins, light, ground=False).min(axis=0))
    cosine[lit[blocked]] = 0.0
    return albedo * (AMBIENT + (1.0 - AMBIENT) * cosine)


def _colour(rgb) -> np.ndarray:
    """A colour as a [3, 1] float32 column, to broadcast over [3, R]."""
    return np.asarray(rgb, F32)[:, None]


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    s = np.clip((x - F32(lo)) / F32(hi - lo), 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def sky(dirs: np.ndarray) -> np.ndarray:
    """Colours [3, R] of the sky at infinity along unit directions `dirs` [3, R]."""
    up = np.clip(dirs[2], 0.0, 1.0)
    colour = mix(SKY_HORIZON, SKY_ZENITH, np.sqrt(up))
    # Clouds: sums of products of waves on a plane above the camera, thinning out at the horizon.
    u, v = dirs[0] / (up + F32(0.2)), dirs[1] / (up + F32(0.2))
    density = np.zeros_like(u)
    for k, (scale, angle, phase) in enumerate(((1.3, 0.3, 0.4), (2.4, 1.4, 2.1), (4.1, 2.3, 0.9), (7.3, 0.8, 3.3))):
        c, s = F32(scale * np.cos(angle)), F32(scale * np.sin(angle))
        density += F32(0.5 ** k) * np.sin(c * u + s * v + F32(phase)) * np.sin(F32(0.8) * (c * v - s * u) - F32(phase))
    clouds = _smoothstep(0.05, 0.6, density) * _smoothstep(0.0, 0.12, dirs[2])
    colour = colour + (_colour(CLOUD) - colour) * (F32(0.85) * clouds)
    glow = np.maximum(dot(dirs, LIGHT[:, None]), 0.0) ** 6
    return np.minimum(colour + _colour(SUN_GLOW) * glow, 1.0)


def render_view(c2w: np.ndarray, cam_dirs: np.ndarray, step: float) -> np.ndarray:
    """Ray-traces one view, averaging the sub-pixel rays of each pixel.

    Args:
      c2w: [4, 4] camera-to-world matrix in the scene frame.
      cam_dirs: [H, W, S, 3] float32 camera-space directions (z = -1) of S rays per pixel.
      step: the spacing of neighbouring sub-rays in those directions' x and y (1 / (focal * spp)).

    Returns:
      [H, W, 3] float32 colours in [0, 1].
    """
    height, width, samples = cam_dirs.shape[:3]
    rotation = c2w[:3, :3].astype(F32)
    rays = rotation @ cam_dirs.reshape(-1, 3).T  # [3, R]
    dirs = rays / np.sqrt(dot(rays, rays))
    origin = c2w[:3, 3:4].astype(F32)
    t, shape_ids = trace(origin, dirs)
    colour = np.empty_like(dirs)
    hit, miss = np.flatnonzero(np.isfinite(t)), np.flatnonzero(np.isinf(t))
    colour[:, miss] = sky(dirs[:, miss])
    footprint = np.zeros((2, len(hit)), F32)
    on_ground = shape_ids[hit] == 0
    footprint[:, on_ground] = _ground_footprint(origin, rays[:, hit[on_ground]], rotation[:, 0] * F32(step),
                                                rotation[:, 1] * F32(step))
    colour[:, hit] = _shade(origin + t[hit] * dirs[:, hit], shape_ids[hit], footprint)
    return colour.reshape(3, height, width, samples).mean(axis=-1).transpose(1, 2, 0)


# --- the COLMAP model ---------------------------------------------------------------------------


def _area_samples(shape: Shape, density: float, rng: np.random.Generator) -> np.ndarray:
    """Points [M, 3] spread uniformly over a shape's surface (a box's bottom face left out)."""
    if shape.kind == "sphere":
        count = int(round(density * 4.0 * np.pi * shape.b ** 2))
        normal = rng.normal(size=(count, 3))
        return shape.a + shape.b * normal / np.linalg.norm(normal, axis=-1, keepdims=True)
    lo, hi = shape.a.astype(np.float64), shape.b.astype(np.float64)
    size = hi - lo
    faces = []  # (axis, value): the four sides and the top
    for axis in (0, 1):
        faces += [(axis, lo[axis]), (axis, hi[axis])]
    faces.append((2, hi[2]))
    points = []
    for axis, value in faces:
        area = np.prod(np.delete(size, axis))
        p = lo + size * rng.uniform(size=(int(round(density * area)), 3))
        p[:, axis] = value
        points.append(p)
    return np.concatenate(points)


def _ground_samples(r_lo: float, r_hi: float, density: float, rng: np.random.Generator) -> np.ndarray:
    """Points [M, 3] spread uniformly over the ground's annulus r_lo <= r < r_hi."""
    count = int(round(density * np.pi * (r_hi ** 2 - r_lo ** 2)))
    r = np.sqrt(rng.uniform(r_lo ** 2, r_hi ** 2, count))
    angle = rng.uniform(0.0, 2.0 * np.pi, count)
    return np.stack([r * np.cos(angle), r * np.sin(angle), np.zeros(count)], axis=-1)


def surface_points() -> tuple[np.ndarray, np.ndarray]:
    """The sampled surface points: positions [P, 3] float64 in the scene frame and shape indices [P]."""
    rng = np.random.default_rng(POINT_SEED)
    points = [_ground_samples(0.0, NEAR_GROUND, POINT_DENSITY["near ground"], rng),
              _ground_samples(NEAR_GROUND, FAR_GROUND, POINT_DENSITY["far ground"], rng)]
    ids = [np.zeros(len(points[0]) + len(points[1]), np.int64)]
    for s, shape in enumerate(SHAPES, start=1):
        points.append(_area_samples(shape, POINT_DENSITY["central" if s <= len(CENTRAL) else "far"], rng))
        ids.append(np.full(len(points[-1]), s))
    return np.concatenate(points), np.concatenate(ids)


def _visible(points: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """Whether each point [P, 3] on a surface of the scene is the first thing seen from `eye` [3]
    along the ray through it: [P] bool."""
    offsets = (points - eye).T
    dist = np.sqrt(dot(offsets, offsets))
    t, _ = trace(eye[:, None], offsets / dist)
    return t >= dist * (1.0 - 1e-6)


def colmap_reconstruction(c2ws: np.ndarray, names: list, width: int, height: int,
                          focal: float) -> tuple[colmap_model.Model, np.ndarray]:
    """The COLMAP model of the views: one PINHOLE camera, the images' poses and the points they see.

    Args:
      c2ws: [N, 4, 4] camera-to-world matrices in the scene frame; names: the N image names.
      width, height, focal: the full-resolution images.

    Returns:
      The model (in the COLMAP frame), and [N, 2] near and far bounds of each image: the 0.1 and
      99.9 percentiles of the depths of the points it sees, in COLMAP units.
    """
    scene_points, shape_ids = surface_points()
    xyz = scene_frame.transform_points(COLMAP_FROM_SCENE, scene_points)
    poses = scene_frame.transform_poses(COLMAP_FROM_SCENE, c2ws)
    observations = []  # per image: (point indices, xys [K, 2], depths [K])
    for c2w_scene, c2w in zip(c2ws, poses):
        qvec, tvec = camtoworld_to_colmap(c2w)
        cam = xyz @ quaternion_to_matrix(qvec).T + tvec
        with np.errstate(divide="ignore", invalid="ignore"):
            xys = focal * cam[:, :2] / cam[:, 2:] + np.array([0.5 * width, 0.5 * height])
        inside = (cam[:, 2] > 0) & np.all((xys >= 0) & (xys < [width, height]), axis=-1)
        index = np.flatnonzero(inside)
        index = index[_visible(scene_points[index], c2w_scene[:3, 3])]
        observations.append((qvec, tvec, index, xys[index], cam[index, 2]))
    seen = np.bincount(np.concatenate([obs[2] for obs in observations]), minlength=len(xyz))
    kept = np.flatnonzero(seen >= MIN_TRACK)
    point_id = np.zeros(len(xyz), np.int64)
    point_id[kept] = np.arange(1, len(kept) + 1)
    tracks = [[] for _ in kept]
    images, bounds = {}, np.zeros((len(names), 2))
    for image_id, (name, (qvec, tvec, index, xys, depths)) in enumerate(zip(names, observations), start=1):
        keep = seen[index] >= MIN_TRACK
        index, xys, depths = index[keep], xys[keep], depths[keep]
        for k, i in enumerate(point_id[index]):
            tracks[i - 1].append((image_id, k))
        images[image_id] = colmap_model.Image(image_id, qvec, tvec, 1, name, xys, point_id[index])
        bounds[image_id - 1] = np.percentile(depths, [0.1, 99.9]) if len(depths) else np.nan
    # An image that sees no point (only possible at tiny sizes) gets the widest bounds of the others.
    bounds[np.isnan(bounds[:, 0])] = [np.nanmin(bounds[:, 0]), np.nanmax(bounds[:, 1])]
    # Colours: the scene's shading of each point (unfiltered textures, shadows included).
    rgb = _shade(scene_points[kept].T, shape_ids[kept], np.zeros((2, len(kept)))).T
    points = colmap_model.Points(np.arange(1, len(kept) + 1, dtype=np.int64), xyz[kept], _to_8bit(rgb),
                                 np.zeros(len(kept)), [np.array(t, np.int64).reshape(-1, 2) for t in tracks])
    camera = colmap_model.Camera(1, "PINHOLE", width, height, np.array([focal, focal, 0.5 * width, 0.5 * height]))
    return colmap_model.Model({1: camera}, images, points), bounds


def transforms_json(c2ws: np.ndarray, names: list, width: int, height: int, focal: float) -> dict:
    """nerfstudio's transforms.json of the views: [N, 4, 4] OpenGL camera-to-worlds in the COLMAP frame,
    moved by `NERFSTUDIO_APPLIED`, with the pinhole camera at the top level."""
    applied = np.concatenate([NERFSTUDIO_APPLIED, [[0.0, 0.0, 0.0, 1.0]]])
    frames = [{"file_path": f"images/{name}", "transform_matrix": (applied @ c2w).tolist(), "colmap_im_id": k + 1}
              for k, (name, c2w) in enumerate(zip(names, c2ws))]
    return {"w": width, "h": height, "fl_x": focal, "fl_y": focal, "cx": 0.5 * width, "cy": 0.5 * height,
            "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0, "camera_model": "OPENCV", "frames": frames,
            "applied_transform": NERFSTUDIO_APPLIED.tolist()}


def poses_bounds(model: colmap_model.Model, bounds: np.ndarray) -> np.ndarray:
    """LLFF's poses_bounds.npy rows [N, 17] of the model's images in name order: the 3x5 matrix
    [-up, right, back | centre | (h, w, f)] of each camera-to-world, row-major, then near and far."""
    rows = []
    for im, (near, far) in sorted(zip(model.images.values(), bounds), key=lambda item: item[0].name):
        c2w = colmap_to_camtoworld(im.qvec, im.tvec)  # OpenGL columns: right, up, back, centre
        cam = model.cameras[im.camera_id]
        pose = np.stack([-c2w[:3, 1], c2w[:3, 0], c2w[:3, 2], c2w[:3, 3],
                         [cam.height, cam.width, cam.params[0]]], axis=-1)
        rows.append(np.concatenate([pose.reshape(-1), [near, far]]))
    return np.array(rows)
