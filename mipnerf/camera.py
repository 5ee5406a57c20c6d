"""Pinhole cameras in the Blender/OpenGL convention and the cone-cast rays through their pixels.

Convention: the camera looks down its -Z axis with +Y up and +X right; image rows grow
downward, so the y term of a pixel direction changes sign. Pixel (i, j) (column i, row j)
has its centre at (i + 0.5, j + 0.5). Camera-to-world matrices are 4x4 (or 3x4) with the
rotation in the top-left 3x3 block and the camera centre in the last column.

Rays are built once on the host with numpy (they are data, not part of the jitted step).
"""

from typing import NamedTuple

import numpy as np


class Rays(NamedTuple):
    """A bundle of cone-cast rays; every field has the same leading shape `[...]`.

    origins: [..., 3] camera centres in world space.
    directions: [..., 3] directions through pixel centres, not normalised (unit z-depth).
    viewdirs: [..., 3] `directions` normalised to unit length.
    radii: [..., 1] radius of the pixel's cone at unit distance along `directions`.
    near: [..., 1] start of the ray's interval, in units of `directions`.
    far: [..., 1] end of the ray's interval, in units of `directions`.
    """

    origins: np.ndarray
    directions: np.ndarray
    viewdirs: np.ndarray
    radii: np.ndarray
    near: np.ndarray
    far: np.ndarray


def focal_from_fov(width: int, camera_angle_x: float) -> float:
    """Focal length in pixels of a camera `width` pixels wide with horizontal FOV `camera_angle_x` (radians)."""
    return 0.5 * width / np.tan(0.5 * camera_angle_x)


def pixel_directions(height: int, width: int, focal: float) -> np.ndarray:
    """Camera-space directions through the pixel centres, with z = -1.

    Returns:
      [height, width, 3] float64 array; entry [j, i] is the direction through column i, row j.
    """
    i, j = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64), indexing="xy")
    x = (i + 0.5 - 0.5 * width) / focal
    y = -(j + 0.5 - 0.5 * height) / focal
    return np.stack([x, y, -np.ones_like(x)], axis=-1)


def generate_rays(
    camtoworlds: np.ndarray, height: int, width: int, focal: float, near: float, far: float
) -> Rays:
    """Rays through every pixel of every camera.

    Args:
      camtoworlds: [N, 3 or 4, 4] camera-to-world matrices.
      height, width: image size in pixels.
      focal: focal length in pixels.
      near, far: bounds of every ray, in units of `directions` (depth along the optical axis).

    Returns:
      `Rays` whose fields have shape [N, height, width, C], float32.
    """
    camtoworlds = np.asarray(camtoworlds, dtype=np.float64)[:, :3, :4]
    cam_dirs = pixel_directions(height, width, focal)
    # Rotate into world space: d_world = R @ d_cam for every pixel.
    directions = np.einsum("nij,hwj->nhwi", camtoworlds[:, :3, :3], cam_dirs)
    origins = np.broadcast_to(camtoworlds[:, None, None, :3, 3], directions.shape)
    viewdirs = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    # mip-NeRF: the cone's radius at unit distance is the distance between neighbouring
    # pixel directions, scaled by 2/sqrt(12) so that the cone's cross-section has the
    # variance of the pixel's square footprint.
    dx = np.sqrt(np.sum((directions[:, :, :-1] - directions[:, :, 1:]) ** 2, axis=-1))
    dx = np.concatenate([dx, dx[:, :, -2:-1]], axis=2)
    radii = dx[..., None] * 2.0 / np.sqrt(12.0)
    ones = np.ones_like(radii)
    f32 = lambda x: np.ascontiguousarray(x, dtype=np.float32)
    return Rays(
        origins=f32(origins),
        directions=f32(directions),
        viewdirs=f32(viewdirs),
        radii=f32(radii),
        near=f32(ones * near),
        far=f32(ones * far),
    )


def project(points: np.ndarray, camtoworld: np.ndarray, height: int, width: int, focal: float) -> np.ndarray:
    """Projects world points into a camera's image; the inverse of `pixel_directions`.

    Args:
      points: [..., 3] world-space points in front of the camera.
      camtoworld: [3 or 4, 4] camera-to-world matrix.

    Returns:
      [..., 2] continuous pixel coordinates (column, row); pixel (i, j) has its centre at (i + 0.5, j + 0.5).
    """
    c2w = np.asarray(camtoworld, dtype=np.float64)[:3, :4]
    p_cam = (np.asarray(points, dtype=np.float64) - c2w[:3, 3]) @ c2w[:3, :3]
    z = -p_cam[..., 2]
    u = p_cam[..., 0] / z * focal + 0.5 * width
    v = -p_cam[..., 1] / z * focal + 0.5 * height
    return np.stack([u, v], axis=-1)


def look_at(eye: np.ndarray, target: np.ndarray = np.zeros(3), up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """Camera-to-world matrix of a camera at `eye` looking at `target`, with `up` kept upward.

    Args:
      eye, target, up: [3] world-space vectors; `up` must not be parallel to `target - eye`.

    Returns:
      [4, 4] float64 camera-to-world matrix in the Blender/OpenGL convention (looks down -Z).
    """
    eye = np.asarray(eye, dtype=np.float64)
    back = eye - np.asarray(target, dtype=np.float64)  # camera +Z points away from the target
    back /= np.linalg.norm(back)
    right = np.cross(np.asarray(up, dtype=np.float64), back)
    right /= np.linalg.norm(right)
    cam_up = np.cross(back, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, cam_up, back, eye
    return c2w
