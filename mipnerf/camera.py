"""Pinhole cameras in the Blender/OpenGL convention, the cone-cast rays through their pixels, and
camera paths (orbit, spiral) around the training cameras for videos.

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


def scene_center(camtoworlds: np.ndarray) -> np.ndarray:
    """The point nearest to every camera's optical axis in least squares.

    Solves sum_i (I - d_i d_i^T) (p - o_i) = 0 for cameras at o_i looking along unit d_i; falls
    back to the origin when the axes are (nearly) parallel and the point is not defined.

    Args:
      camtoworlds: [N, 3 or 4, 4] camera-to-world matrices.

    Returns:
      [3] float64 world-space point.
    """
    c2w = np.asarray(camtoworlds, dtype=np.float64)
    origins, forward = c2w[:, :3, 3], -c2w[:, :3, 2]
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    off_axis = np.eye(3) - forward[:, :, None] * forward[:, None, :]  # [N, 3, 3]
    lhs, rhs = off_axis.sum(axis=0), np.einsum("nij,nj->i", off_axis, origins)
    if np.linalg.cond(lhs) > 1e6:
        return np.zeros(3)
    return np.linalg.solve(lhs, rhs)


def up_vector(camtoworlds: np.ndarray) -> np.ndarray:
    """The unit mean of the cameras' up (+Y) axes: the scene's vertical. [N, 3 or 4, 4] -> [3]."""
    up = np.asarray(camtoworlds, dtype=np.float64)[:, :3, 1].mean(axis=0)
    return up / np.linalg.norm(up)


class Orbit(NamedTuple):
    """Where the training cameras sit, in spherical coordinates about the scene centre.

    center: [3] the scene centre; up: [3] the unit vertical axis through it.
    east: [3] a unit horizontal direction, azimuth 0 (towards the camera farthest from the axis).
    distances: [N] the cameras' distances from the centre.
    elevations: [N] their angles above the horizontal plane through the centre, radians.
    """

    center: np.ndarray
    up: np.ndarray
    east: np.ndarray
    distances: np.ndarray
    elevations: np.ndarray


def camera_orbit(camtoworlds: np.ndarray) -> Orbit:
    """The `Orbit` of cameras [N, 3 or 4, 4]."""
    c2w = np.asarray(camtoworlds, dtype=np.float64)
    center, up = scene_center(c2w), up_vector(c2w)
    offsets = c2w[:, :3, 3] - center
    heights = offsets @ up
    horizontal = offsets - heights[:, None] * up
    spans = np.linalg.norm(horizontal, axis=-1)
    east = horizontal[np.argmax(spans)] / np.max(spans)
    return Orbit(center=center, up=up, east=east, distances=np.linalg.norm(offsets, axis=-1),
                 elevations=np.arctan2(heights, spans))


def _path_on_sphere(orbit: Orbit, azimuths: np.ndarray, elevations: np.ndarray) -> np.ndarray:
    """Cameras at the mean distance from the centre and the given angles, looking at the centre.

    Args:
      azimuths, elevations: [F] radians; azimuth turns about `orbit.up` from `orbit.east`.

    Returns:
      [F, 4, 4] camera-to-world matrices, image top towards `orbit.up`.
    """
    north = np.cross(orbit.up, orbit.east)
    directions = (np.cos(elevations)[:, None] * (np.cos(azimuths)[:, None] * orbit.east
                                                 + np.sin(azimuths)[:, None] * north)
                  + np.sin(elevations)[:, None] * orbit.up)
    eyes = orbit.center + np.mean(orbit.distances) * directions
    return np.stack([look_at(eye, orbit.center, orbit.up) for eye in eyes])


def orbit_path(camtoworlds: np.ndarray, num_frames: int) -> np.ndarray:
    """One full turn about the vertical axis through the scene centre, at the cameras' mean
    distance and mean elevation, looking at the centre.

    Args:
      camtoworlds: [N, 3 or 4, 4] the training cameras.

    Returns:
      [num_frames, 4, 4] camera-to-world matrices; the last frame leads back into the first.
    """
    orbit = camera_orbit(camtoworlds)
    azimuths = 2 * np.pi * np.arange(num_frames) / num_frames
    return _path_on_sphere(orbit, azimuths, np.full(num_frames, np.mean(orbit.elevations)))


def spiral_path(camtoworlds: np.ndarray, num_frames: int, waves: int = 2) -> np.ndarray:
    """One full turn about the scene centre at the cameras' mean distance, looking at the centre,
    while the elevation swings `waves` times about the mean elevation.

    The swing is the standard deviation of the cameras' elevations, kept inside their range.

    Args:
      camtoworlds: [N, 3 or 4, 4] the training cameras.

    Returns:
      [num_frames, 4, 4] camera-to-world matrices; the last frame leads back into the first.
    """
    orbit = camera_orbit(camtoworlds)
    mean = np.mean(orbit.elevations)
    swing = min(np.std(orbit.elevations), np.max(orbit.elevations) - mean, mean - np.min(orbit.elevations))
    azimuths = 2 * np.pi * np.arange(num_frames) / num_frames
    return _path_on_sphere(orbit, azimuths, mean + swing * np.sin(waves * azimuths))
