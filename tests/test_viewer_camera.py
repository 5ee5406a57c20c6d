"""The browser's camera (viser: OpenCV axes, wxyz, vertical fov) against the package's."""

import numpy as np
from scipy.spatial.transform import Rotation

from mipnerf.cameras import camera, conventions
from mipnerf.viewer import browser_camera


def random_poses(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), Rotation.random(n, random_state=seed)


def test_quaternions_match_scipy_and_round_trip():
    _, rotations = random_poses(200)
    for rotation in rotations:
        x, y, z, w = rotation.as_quat()
        wxyz = np.array([w, x, y, z]) * np.sign(w)
        np.testing.assert_allclose(conventions.quaternion_to_matrix(wxyz), rotation.as_matrix(), atol=1e-12)
        np.testing.assert_allclose(conventions.matrix_to_quaternion(rotation.as_matrix()), wxyz, atol=1e-12)
    # Half-turns, where w = 0 and a naive formula divides by zero.
    for axis in np.eye(3):
        matrix = Rotation.from_rotvec(np.pi * axis).as_matrix()
        np.testing.assert_allclose(conventions.quaternion_to_matrix(conventions.matrix_to_quaternion(matrix)),
                                   matrix, atol=1e-12)


def opencv_pixel(point, position, wxyz, fov, width, height):
    """Where the browser's camera sees `point`: OpenCV's pinhole, by hand (x right, y down, z forward)."""
    x, y, z = Rotation.from_quat(np.roll(wxyz, -1)).as_matrix().T @ (point - position)
    focal = 0.5 * height / np.tan(0.5 * fov)
    return focal * x / z + 0.5 * width, focal * y / z + 0.5 * height


def test_the_ray_through_a_pixel_passes_through_the_point_the_browser_sees_there():
    positions, rotations = random_poses(20, seed=1)
    rng = np.random.default_rng(2)
    width, height, fov = 320, 200, np.deg2rad(50.0)
    for position, rotation in zip(positions, rotations):
        x, y, z, w = rotation.as_quat()
        wxyz = np.array([w, x, y, z])
        # A point in front of the camera, in the OpenCV frame: +z forward.
        local = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.3, 0.3), rng.uniform(1.0, 5.0)])
        point = position + rotation.as_matrix() @ local
        u, v = opencv_pixel(point, position, wxyz, fov, width, height)
        c2w, intrinsics = browser_camera.browser_camera(position, wxyz, fov, width, height)
        cameras = camera.Cameras.of(c2w[None], intrinsics, width, height, 0.1, 10.0, dtype=np.float64)
        with camera.jax.enable_x64():
            rays = camera.cast_rays(camera.jax.tree.map(lambda a: a[0], cameras), np.float64(u), np.float64(v),
                                    camera.Lens())
        to_point = (point - np.asarray(rays.origins)) / np.linalg.norm(point - np.asarray(rays.origins))
        np.testing.assert_allclose(np.asarray(rays.viewdirs), to_point, atol=1e-9)
        np.testing.assert_allclose(np.asarray(rays.origins), position, atol=1e-12)
        # The package's convention: the camera looks down its -Z axis, +Y up the image.
        np.testing.assert_allclose(-c2w[:, 2], rotation.as_matrix()[:, 2], atol=1e-12)
        np.testing.assert_allclose(c2w[:, 1], -rotation.as_matrix()[:, 1], atol=1e-12)


def test_a_training_camera_sent_to_the_browser_comes_back_the_same():
    positions, rotations = random_poses(50, seed=3)
    for position, rotation in zip(positions, rotations):
        c2w = np.eye(4)
        c2w[:3, :3], c2w[:3, 3] = rotation.as_matrix(), position
        fy, height, width = 412.5, 300, 400
        fov = browser_camera.vertical_fov(fy, height)
        back, intrinsics = browser_camera.browser_camera(*browser_camera.browser_pose(c2w), fov, width, height)
        np.testing.assert_allclose(back, c2w[:3], atol=1e-12)
        np.testing.assert_allclose([intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy],
                                   [fy, fy, width / 2, height / 2], rtol=1e-12)


def test_frustums_whose_images_would_cover_the_view_are_in_the_way():
    """From a view at the origin looking down -z with fov 0.7, a frustum image (scale 0.1, same fov)
    straight ahead at depth D spans 0.1 / D of the view's height: 0.5 at D = 0.2, 0.125 at D = 0.8."""
    def c2w_at(z, turned=0.0):
        c2w = np.eye(4)[:3]
        c2w[:3, :3] = Rotation.from_rotvec([0.0, turned, 0.0]).as_matrix()
        c2w[2, 3] = z
        return c2w

    view = c2w_at(0.0)
    cams = np.stack([view,               # the one the view sits in: its image spans 1
                     c2w_at(-0.1),       # image at depth 0.2: 0.5
                     c2w_at(-0.7),       # image at depth 0.8: 0.125
                     c2w_at(0.5, np.pi),  # behind, facing the view: image at z = 0.6, not in front
                     c2w_at(-0.35)])     # image at depth 0.45: 0.22
    fovs = np.full(len(cams), 0.7)
    got = browser_camera.frustums_in_the_way(cams, fovs, 0.1, view, 0.7, share=0.25)
    np.testing.assert_array_equal(got, [True, True, False, False, False])
    # A wider view makes each image a smaller share of it.
    assert not browser_camera.frustums_in_the_way(cams[1:2], fovs[:1], 0.1, view, 2.0, share=0.25)[0]
