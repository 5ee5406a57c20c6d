"""The conventions of camera frames, each written once: the OpenCV ↔ OpenGL flip, unit
quaternions ↔ rotation matrices (scipy's `Rotation`), COLMAP's world-to-camera poses ↔ the
package's camera-to-world matrices, and the check that a matrix is rigid.

The package's cameras look down -Z with +Y up and +X right (OpenGL / Blender); OpenCV's and
COLMAP's look down +Z with +Y down the image.
"""

import numpy as np
from scipy.spatial.transform import Rotation

# The camera axes of the OpenCV convention (+X right, +Y down, +Z forward) in those of the OpenGL
# one (+Y up, +Z backward), and back, since the flip is its own inverse: the sign of each axis [3],
# and the same as a [3, 3] matrix (camera-to-world rotations: `R_opengl = R_opencv @ OPENCV_TO_OPENGL`).
OPENCV_TO_OPENGL_SIGNS = np.array([1.0, -1.0, -1.0])
OPENCV_TO_OPENGL = np.diag(OPENCV_TO_OPENGL_SIGNS)

ROTATION_TOLERANCE = 1e-3  # how far a matrix's top-left 3x3 may be from a rotation, and its last row from (0, 0, 0, 1)


def quaternion_to_matrix(wxyz) -> np.ndarray:
    """[4] quaternion (w, x, y, z), normalised first -> [3, 3] float64 rotation matrix."""
    return Rotation.from_quat(np.roll(np.asarray(wxyz, np.float64), -1)).as_matrix()


def matrix_to_quaternion(rotation) -> np.ndarray:
    """[3, 3] rotation matrix -> [4] unit quaternion (w, x, y, z) with w >= 0."""
    q = np.roll(Rotation.from_matrix(np.asarray(rotation, np.float64)).as_quat(), 1)
    return -q if q[0] < 0 else q


def colmap_to_camtoworld(qvec, tvec) -> np.ndarray:
    """[4, 4] OpenGL camera-to-world matrix of COLMAP's world-to-camera pose (qvec [4], tvec [3], OpenCV axes)."""
    rotation = quaternion_to_matrix(qvec)
    c2w = np.eye(4)
    c2w[:3, :3] = rotation.T @ OPENCV_TO_OPENGL
    c2w[:3, 3] = -rotation.T @ np.asarray(tvec, np.float64)
    return c2w


def camtoworld_to_colmap(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COLMAP's world-to-camera (qvec [4], tvec [3]) of a [3 or 4, 4] OpenGL camera-to-world matrix:
    R = (c2w_rot OPENCV_TO_OPENGL)^T and t = -R centre, with R rebuilt from the quaternion so that
    the two agree to rounding (`colmap_to_camtoworld` inverts it)."""
    c2w = np.asarray(c2w, np.float64)
    qvec = matrix_to_quaternion((c2w[:3, :3] @ OPENCV_TO_OPENGL).T)
    return qvec, -quaternion_to_matrix(qvec) @ c2w[:3, 3]


def check_rigid(matrix: np.ndarray, what: str, expected: str, error: type) -> np.ndarray:
    """`matrix` [4, 4] when it is rigid (its top-left 3x3 a rotation, its last row (0, 0, 0, 1), to
    `ROTATION_TOLERANCE`); else raises `error` in one line naming `what` and `expected`."""
    rotation = matrix[:3, :3]
    if (np.abs(rotation.T @ rotation - np.eye(3)).max() > ROTATION_TOLERANCE
            or abs(np.linalg.det(rotation) - 1) > ROTATION_TOLERANCE):
        raise error(f"{what} has a top-left 3x3 that is not a rotation; expected {expected}")
    if np.abs(matrix[3] - [0, 0, 0, 1]).max() > ROTATION_TOLERANCE:
        raise error(f"{what} has the last row {matrix[3].tolist()}; expected (0, 0, 0, 1) in {expected}")
    return matrix
