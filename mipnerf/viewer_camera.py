"""The browser's camera and the package's: one conversion each way.

viser reports the browser's camera as a position, a rotation `wxyz` (a unit quaternion, w first)
taking camera axes to world axes in the OpenCV convention (the camera looks down +Z, +Y points
down the image, +X right) and a vertical field of view in radians over a canvas of
`width` x `height` pixels with square pixels and the principal point at the centre. The package's
cameras look down -Z with +Y up (OpenGL / Blender, `camera.py`): the two rotations differ by
negating the camera's Y and Z axes.
"""

import numpy as np

from mipnerf.camera import OPENCV_TO_OPENGL, Intrinsics, focal_from_fov


def quaternion_to_matrix(wxyz) -> np.ndarray:
    """[3, 3] rotation of a quaternion (w, x, y, z), normalised first."""
    w, x, y, z = np.asarray(wxyz, np.float64) / np.linalg.norm(wxyz)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quaternion(rotation) -> np.ndarray:
    """[4] unit quaternion (w, x, y, z), w >= 0, of a [3, 3] rotation (Shepperd's method: the
    largest of the four squared components is taken first, so no branch divides by a small number)."""
    r = np.asarray(rotation, np.float64)
    squares = np.array([1 + r[0, 0] + r[1, 1] + r[2, 2], 1 + r[0, 0] - r[1, 1] - r[2, 2],
                        1 - r[0, 0] + r[1, 1] - r[2, 2], 1 - r[0, 0] - r[1, 1] + r[2, 2]])
    k = int(np.argmax(squares))
    big = 0.5 * np.sqrt(squares[k])
    pairs = {  # 4 q_k q_j for each j, from the rotation's entries
        0: (None, r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]),
        1: (r[2, 1] - r[1, 2], None, r[0, 1] + r[1, 0], r[0, 2] + r[2, 0]),
        2: (r[0, 2] - r[2, 0], r[0, 1] + r[1, 0], None, r[1, 2] + r[2, 1]),
        3: (r[1, 0] - r[0, 1], r[0, 2] + r[2, 0], r[1, 2] + r[2, 1], None),
    }[k]
    q = np.array([big if v is None else v / (4 * big) for v in pairs])
    return q if q[0] >= 0 else -q


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
