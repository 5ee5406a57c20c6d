"""Small synthetic captures in the COLMAP / LLFF layout, with known cameras and 3D points.

The distortion models are written out here from their definitions (OpenCV's radial-tangential
model and the equidistant fisheye model), independently of `mipnerf.camera`, so that tests can
check the loader's rays against them.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from mipnerf.cameras import conventions
from mipnerf.cameras.orbits import look_at
from mipnerf.datasets import colmap_model as cm

OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0])

# A camera of each supported model: (model, params at 48x32 pixels).
CAMERAS = {
    "SIMPLE_PINHOLE": [40.0, 24.0, 16.0],
    "PINHOLE": [40.0, 38.0, 23.5, 16.5],
    "SIMPLE_RADIAL": [40.0, 24.0, 16.0, -0.12],
    "RADIAL": [40.0, 24.0, 16.0, -0.1, 0.03],
    "OPENCV": [40.0, 39.0, 24.5, 15.5, -0.1, 0.02, 0.004, -0.003],
    "OPENCV_FISHEYE": [30.0, 30.0, 24.0, 16.0, 0.05, -0.01, 0.002, -0.0005],
}
WIDTH, HEIGHT = 48, 32


def reference_project(model: str, params, points_cam: np.ndarray) -> np.ndarray:
    """Pixel positions [P, 2] of camera-space points [P, 3] (OpenCV axes, +Z forward) under a COLMAP model."""
    p = list(params)
    fx, fy, cx, cy = {"SIMPLE_PINHOLE": (p[0], p[0], p[1], p[2]), "SIMPLE_RADIAL": (p[0], p[0], p[1], p[2]),
                      "RADIAL": (p[0], p[0], p[1], p[2])}.get(model, p[:4])
    x, y, z = points_cam.T
    if model == "OPENCV_FISHEYE":
        k1, k2, k3, k4 = p[4:8]
        r = np.hypot(x, y)
        theta = np.arctan2(r, z)
        theta_d = theta * (1 + k1 * theta**2 + k2 * theta**4 + k3 * theta**6 + k4 * theta**8)
        xd, yd = theta_d * x / r, theta_d * y / r
    else:
        k1, k2, p1, p2 = {"SIMPLE_RADIAL": lambda: (p[3], 0, 0, 0), "RADIAL": lambda: (p[3], p[4], 0, 0),
                          "OPENCV": lambda: tuple(p[4:8])}.get(model, lambda: (0, 0, 0, 0))()
        a, b = x / z, y / z
        r2 = a * a + b * b
        radial = 1 + k1 * r2 + k2 * r2 * r2
        xd = a * radial + 2 * p1 * a * b + p2 * (r2 + 2 * a * a)
        yd = b * radial + p1 * (r2 + 2 * b * b) + 2 * p2 * a * b
    return np.stack([fx * xd + cx, fy * yd + cy], axis=-1)


# The capture's world frame is the scene's, moved by a similarity, as COLMAP's arbitrary frame is.
WORLD_ROTATION = conventions.quaternion_to_matrix(np.array([0.9, 0.2, -0.3, 0.25]))
WORLD_SCALE, WORLD_SHIFT = 2.5, np.array([3.0, -1.0, 0.5])


def to_world(points: np.ndarray) -> np.ndarray:
    """Scene-frame points [..., 3] in the capture's world frame."""
    return WORLD_SCALE * points @ WORLD_ROTATION.T + WORLD_SHIFT


def ring_poses(count: int, rng) -> np.ndarray:
    """[count, 4, 4] OpenGL camera-to-world matrices in the world frame: a ring about the scene's
    origin (radius about 3, height about 1, scene +z up), looking near the origin."""
    angles = 2 * np.pi * np.arange(count) / count
    eyes = np.stack([3 * np.cos(angles), 3 * np.sin(angles), 1 + 0.2 * rng.uniform(-1, 1, count)], -1)
    poses = np.stack([look_at(eye, rng.uniform(-0.1, 0.1, 3)) for eye in eyes])
    poses[:, :3, :3] = WORLD_ROTATION @ poses[:, :3, :3]
    poses[:, :3, 3] = to_world(poses[:, :3, 3])
    return poses


def forward_poses(count: int, rng) -> np.ndarray:
    """[count, 4, 4] camera-to-worlds in the world frame of a forward-facing capture: cameras on a
    small patch of the plane z = 3 (scene frame), all looking down at the scene's origin."""
    eyes = np.concatenate([rng.uniform(-0.5, 0.5, (count, 2)) * [1.0, 0.6], np.full((count, 1), 3.0)], axis=-1)
    poses = np.stack([look_at(eye, rng.uniform(-0.05, 0.05, 3), up=np.array([0.0, 1.0, 0.0])) for eye in eyes])
    poses[:, :3, :3] = WORLD_ROTATION @ poses[:, :3, :3]
    poses[:, :3, 3] = to_world(poses[:, :3, 3])
    return poses


def world_to_camera(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COLMAP's (qvec, tvec) of an OpenGL camera-to-world matrix."""
    rotation = (c2w[:3, :3] @ OPENCV_TO_OPENGL).T
    return conventions.matrix_to_quaternion(rotation), -rotation @ c2w[:3, 3]


def write_capture(root, count: int = 10, models=("PINHOLE",), factors=(2,), binary: bool = True,
                  poses_bounds: bool = False, sparse: bool = True, seed: int = 0, forward: bool = False) -> dict:
    """Writes a capture of `count` random-texture photos of WIDTH x HEIGHT pixels into `root`.

    Image k (named img_{k:03d}.png) uses camera k % len(models) of the given COLMAP models. 3D
    points are random points near the scene's origin, kept in an image where they project inside it.
    Cameras are on a ring around the origin (a 360 capture), or with `forward`, in front of it.

    Returns:
      {"poses": [count, 4, 4] world camera-to-worlds, "points": [P, 3] world points, "model": the Model}.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    poses = (forward_poses if forward else ring_poses)(count, rng)
    points = to_world(rng.uniform(-0.6, 0.6, (300, 3)))
    cameras = {k + 1: cm.Camera(k + 1, m, WIDTH, HEIGHT, np.array(CAMERAS[m])) for k, m in enumerate(models)}
    images, tracks = {}, [[] for _ in points]
    (root / "images").mkdir(parents=True)
    for k, c2w in enumerate(poses):
        name, cam = f"img_{k:03d}.png", cameras[k % len(models) + 1]
        qvec, tvec = world_to_camera(c2w)
        in_cam = points @ conventions.quaternion_to_matrix(qvec).T + tvec
        uv = reference_project(cam.model, cam.params, in_cam)
        seen = np.flatnonzero((in_cam[:, 2] > 0) & np.all((uv >= 0) & (uv < [WIDTH, HEIGHT]), axis=-1))
        for j, p in enumerate(seen):
            tracks[p].append((k + 1, j))
        images[k + 1] = cm.Image(k + 1, qvec, tvec, cam.id, name, uv[seen], seen.astype(np.int64) + 1)
        pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / name)
        for f in factors:
            (root / f"images_{f}").mkdir(exist_ok=True)
            small = pixels.reshape(HEIGHT // f, f, WIDTH // f, f, 3).mean(axis=(1, 3))
            Image.fromarray(np.round(small).astype(np.uint8)).save(root / f"images_{f}" / name)
    model = cm.Model(cameras, images, cm.Points(np.arange(1, len(points) + 1), points, rng.integers(0, 256, (len(points), 3)).astype(np.uint8),
                                                 np.zeros(len(points)), [np.array(t, np.int64).reshape(-1, 2) for t in tracks]))
    if sparse:
        cm.write_model(model, root / "sparse" / "0", binary=binary)
    if poses_bounds:
        rows = []
        for c2w, im in zip(poses, images.values()):
            right, up, back = c2w[:3, 0], c2w[:3, 1], c2w[:3, 2]
            cam = cameras[im.camera_id]
            hwf = [HEIGHT, WIDTH, cam.params[0]]
            pose = np.stack([-up, right, back, c2w[:3, 3], hwf], axis=-1)  # LLFF columns [down, right, back]
            rows.append(np.concatenate([pose.ravel(), [1.0, 9.0]]))
        np.save(root / "poses_bounds.npy", np.array(rows))
    return {"poses": poses, "points": points, "model": model}
