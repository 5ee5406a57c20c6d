"""The frame a real capture is trained in: similarity transforms that normalise COLMAP's poses.

COLMAP reconstructs a scene in an arbitrary frame (origin, orientation and scale). Before
training, the cameras are moved into a canonical one, recorded as a 4x4 similarity `T`
(rotation, translation, uniform scale) mapping homogeneous world points to the model's frame:
- 360 scenes (`pca_transform`): the cameras' centroid at the origin, the principal axes of the
  camera centres as x, y, z (largest spread first, so a ring of cameras lies in the xy plane),
  +z along the cameras' mean up, and every centre inside [-1, 1]^3.
- forward-facing scenes (`forward_facing_transform`, LLFF): scaled so that the nearest scene
  content lies at depth 1 / 0.75, then recentred so that the average camera is the identity.
"""

import numpy as np

from mipnerf.cameras.orbits import average_pose


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Applies a 4x4 transform to points [..., 3]."""
    return np.asarray(points, np.float64) @ transform[:3, :3].T + transform[:3, 3]


def similarity_scale(transform: np.ndarray) -> float:
    """The uniform scale of a similarity transform."""
    return float(np.cbrt(np.linalg.det(transform[:3, :3])))


def transform_poses(transform: np.ndarray, camtoworlds: np.ndarray) -> np.ndarray:
    """Moves cameras [N, 3 or 4, 4] by a similarity transform; their axes stay orthonormal.

    Returns:
      [N, 4, 4] float64 camera-to-world matrices in the transformed frame.
    """
    c2w = np.asarray(camtoworlds, np.float64)
    rotation = transform[:3, :3] / similarity_scale(transform)
    out = np.tile(np.eye(4), (len(c2w), 1, 1))
    out[:, :3, :3] = rotation @ c2w[:, :3, :3]
    out[:, :3, 3] = transform_points(transform, c2w[:, :3, 3])
    return out


def _similarity(rotation: np.ndarray, origin: np.ndarray, scale: float) -> np.ndarray:
    """The 4x4 transform x -> scale * rotation @ (x - origin)."""
    transform = np.eye(4)
    transform[:3, :3] = scale * rotation
    transform[:3, 3] = -scale * rotation @ origin
    return transform


def pca_transform(camtoworlds: np.ndarray) -> np.ndarray:
    """The 4x4 similarity that puts 360-degree captures [N, 3 or 4, 4] in the canonical frame.

    Centroid of the camera centres at the origin; rows of the rotation are the centres'
    principal axes, largest variance first, signed so that the frame is right-handed and the
    cameras' mean up axis has +z; scaled so that every centre lies in [-1, 1]^3.
    """
    c2w = np.asarray(camtoworlds, np.float64)
    centres = c2w[:, :3, 3]
    origin = centres.mean(axis=0)
    offsets = centres - origin
    variances, axes = np.linalg.eigh(offsets.T @ offsets)
    rotation = axes[:, np.argsort(variances)[::-1]].T
    if np.linalg.det(rotation) < 0:
        rotation[2] *= -1
    if (rotation @ c2w[:, :3, 1].mean(axis=0))[2] < 0:
        rotation = np.diag([1.0, -1.0, -1.0]) @ rotation  # half a turn about x: up becomes +z
    extent = np.max(np.abs(offsets @ rotation.T))
    return _similarity(rotation, origin, 1.0 / extent if extent > 0 else 1.0)


def forward_facing_transform(camtoworlds: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """The 4x4 similarity that puts forward-facing captures in the canonical LLFF frame.

    Scales by 1 / (0.75 * the smallest near bound), so that no content is nearer than 1 / 0.75,
    then makes the average pose (`orbits.average_pose`) the identity.

    Args:
      camtoworlds: [N, 3 or 4, 4]; bounds: [N, 2] near and far depths in the same frame.
    """
    scale = 1.0 / (0.75 * float(np.min(bounds)))
    scaled = transform_poses(np.diag([scale, scale, scale, 1.0]), camtoworlds)
    pose = average_pose(scaled)
    return _similarity(pose[:3, :3].T, pose[:3, 3], 1.0) @ np.diag([scale, scale, scale, 1.0])
