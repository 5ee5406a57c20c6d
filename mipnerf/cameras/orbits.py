"""Where cameras stand around a scene, in numpy: rotations about an axis, look-at cameras, the
centre the training cameras look at and their orbit about it, the scene's up direction, and the
camera paths of videos (orbit, spiral, zoom, ellipse, forward-facing spiral).

Camera-to-world matrices are 4x4 (or 3x4), in the OpenGL convention of `camera`: the camera looks
down its -Z axis with +Y up.
"""

from typing import NamedTuple

import numpy as np


def axis_angle(axis, angle: float) -> np.ndarray:
    """[3, 3] float64 rotation by `angle` radians about `axis` ([3], any length but zero; Rodrigues)."""
    x, y, z = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * k @ k


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


def zoom_path(camtoworlds: np.ndarray, num_frames: int, pull: float = 4.0) -> np.ndarray:
    """A camera pulling back from the scene centre: from the cameras' mean distance to `pull`
    times it, in equal ratios per frame, at their mean elevation and the azimuth of the camera
    farthest from the vertical axis, looking at the centre. At a fixed image size, content
    shrinks: aliasing (shimmering) shows up where the encoding does not account for it.

    Returns:
      [num_frames, 4, 4] camera-to-world matrices.
    """
    orbit = camera_orbit(camtoworlds)
    elevation = np.mean(orbit.elevations)
    direction = np.cos(elevation) * orbit.east + np.sin(elevation) * orbit.up
    distances = np.mean(orbit.distances) * pull ** (np.arange(num_frames) / max(num_frames - 1, 1))
    return np.stack([look_at(orbit.center + d * direction, orbit.center, orbit.up) for d in distances])


def average_pose(camtoworlds: np.ndarray) -> np.ndarray:
    """[4, 4] camera-to-world at the cameras' mean centre, looking along their mean viewing
    direction, with the image's up as close to their mean up as orthogonality allows."""
    c2w = np.asarray(camtoworlds, np.float64)
    back = c2w[:, :3, 2].sum(axis=0)
    back /= np.linalg.norm(back)
    right = np.cross(c2w[:, :3, 1].sum(axis=0), back)
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, np.cross(back, right), back, c2w[:, :3, 3].mean(axis=0)
    return pose


def ellipse_path(camtoworlds: np.ndarray, num_frames: int) -> np.ndarray:
    """mip-NeRF 360's video path: an ellipse at the cameras' mean height, looking at the scene.

    The focus is the point nearest every optical axis (`scene_center`); the vertical is the
    world axis closest to the cameras' mean up. The ellipse is centred on the focus's
    horizontal position, its semi-axes the 90th percentiles of the cameras' horizontal offsets
    from it along the two other world axes, and the frames are equally spaced in arc length.

    Args:
      camtoworlds: [N, 3 or 4, 4] the training cameras.

    Returns:
      [num_frames, 4, 4] camera-to-world matrices; the last frame leads back into the first.
    """
    c2w = np.asarray(camtoworlds, np.float64)
    focus, mean_up = scene_center(c2w), up_vector(c2w)
    k = int(np.argmax(np.abs(mean_up)))
    up = np.eye(3)[k] * np.sign(mean_up[k])
    i, j = [a for a in range(3) if a != k]
    positions = c2w[:, :3, 3]
    semi_i, semi_j = (np.percentile(np.abs(positions[:, a] - focus[a]), 90) for a in (i, j))
    # Equal arc length: invert the cumulative length of a finely sampled ellipse.
    fine = np.linspace(0.0, 2 * np.pi, 10_001)
    length = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(semi_i * np.cos(fine)), np.diff(semi_j * np.sin(fine))))])
    angles = np.interp(np.arange(num_frames) / num_frames * length[-1], length, fine)
    eyes = np.zeros((num_frames, 3))
    eyes[:, i] = focus[i] + semi_i * np.cos(angles)
    eyes[:, j] = focus[j] + semi_j * np.sin(angles)
    eyes[:, k] = np.mean(positions[:, k])
    return np.stack([look_at(eye, focus, up) for eye in eyes])


def forward_facing_spiral(camtoworlds: np.ndarray, bounds: np.ndarray, num_frames: int, turns: int = 2,
                          z_rate: float = 0.5) -> np.ndarray:
    """The LLFF video path: a spiral in front of the average camera, looking at a focus point.

    In the average camera's frame (`average_pose`): the focus lies at depth
    1 / (0.25 / (0.9 near) + 0.75 / (5 far)) from the nearest and farthest bounds; the radii
    are the 90th percentiles of the cameras' |x|, |y|, |z| there; the eye turns `turns` times,
    at (r_x cos a, -r_y sin a, -r_z sin(z_rate a)).

    Args:
      camtoworlds: [N, 3 or 4, 4] the training cameras; bounds: [N, 2] their near/far depths.

    Returns:
      [num_frames, 4, 4] camera-to-world matrices.
    """
    c2w = np.asarray(camtoworlds, np.float64)
    average = average_pose(c2w)
    focus_depth = 1.0 / (0.25 / (0.9 * np.min(bounds)) + 0.75 / (5.0 * np.max(bounds)))
    local = (c2w[:, :3, 3] - average[:3, 3]) @ average[:3, :3]
    radii = np.percentile(np.abs(local), 90, axis=0)
    angles = 2 * np.pi * turns * np.arange(num_frames) / num_frames
    eyes = radii * np.stack([np.cos(angles), -np.sin(angles), -np.sin(z_rate * angles)], axis=-1)
    poses = np.stack([look_at(eye, np.array([0.0, 0.0, -focus_depth]), np.array([0.0, 1.0, 0.0])) for eye in eyes])
    return average @ poses
