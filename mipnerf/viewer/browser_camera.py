"""The browser's camera and the package's: one conversion each way.

viser reports the browser's camera as a position, a rotation `wxyz` (a unit quaternion, w first)
taking camera axes to world axes in the OpenCV convention (the camera looks down +Z, +Y points
down the image, +X right) and a vertical field of view in radians over a canvas of
`width` x `height` pixels with square pixels and the principal point at the centre. The package's
cameras look down -Z with +Y up (OpenGL / Blender, `camera.py`): the two rotations differ by
negating the camera's Y and Z axes.
"""

import numpy as np

from mipnerf.cameras.camera import Intrinsics, focal_from_fov
from mipnerf.cameras.conventions import OPENCV_TO_OPENGL, matrix_to_quaternion, quaternion_to_matrix


def browser_camera(position, wxyz, fov: float, width: int, height: int) -> tuple[np.ndarray, Intrinsics]:
    """The package's camera for the browser's: ([3, 4] camera-to-world, OpenGL convention; one
    pinhole `Intrinsics` with scalar fields) for an image of `width` x `height` pixels."""
    rotation = quaternion_to_matrix(wxyz) @ OPENCV_TO_OPENGL
    camtoworld = np.concatenate([rotation, np.asarray(position, np.float64).reshape(3, 1)], axis=1)
    return camtoworld, Intrinsics.pinhole(focal_from_fov(height, fov), width, height)


def browser_pose(camtoworld) -> tuple[np.ndarray, np.ndarray]:
    """The browser's (position [3], wxyz [4]) for a [3 or 4, 4] camera-to-world (OpenGL convention)."""
    c2w = np.asarray(camtoworld, np.float64)
    return c2w[:3, 3].copy(), matrix_to_quaternion(c2w[:3, :3] @ OPENCV_TO_OPENGL)


def vertical_fov(fy: float, height: int) -> float:
    """The vertical field of view (radians) of focal length `fy` over `height` pixels."""
    return float(2 * np.arctan(0.5 * height / fy))


def frustums_in_the_way(camtoworlds, fovs, scale: float, camtoworld, fov: float, share: float) -> np.ndarray:
    """[N] bool: which of N camera frustums (camtoworlds [N, 3, 4], OpenGL; vertical fovs [N]; their
    images `scale` along each view) would show their image over more than `share` of the height of
    the view from `camtoworld` (vertical `fov`): an image of height 2 s tan(fov_k / 2) at depth D
    in front of the view spans s tan(fov_k / 2) / (D tan(fov / 2)) of it. The one the view sits in
    spans about all of it; images behind the view span none."""
    c2ws, c2w = np.asarray(camtoworlds, np.float64), np.asarray(camtoworld, np.float64)
    images = c2ws[:, :3, 3] - scale * c2ws[:, :3, 2]
    depth = (images - c2w[:3, 3]) @ -c2w[:3, 2]
    spans = scale * np.tan(0.5 * np.asarray(fovs, np.float64)) / (np.maximum(depth, 1e-9) * np.tan(0.5 * fov))
    return (depth > 0) & (spans > share)
