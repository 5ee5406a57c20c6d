"""Cone-cast rays of a pinhole camera in the Blender convention."""

import numpy as np

from mipnerf import camera


def test_rays_hit_projections_of_known_points():
    rng = np.random.default_rng(0)
    height, width = 30, 40
    focal = camera.focal_from_fov(width, 0.69)
    c2w = camera.look_at(np.array([1.0, -3.5, 2.0]))
    # Random points in front of the camera.
    pts = rng.uniform(-0.8, 0.8, size=(200, 3))
    cam = camera.Intrinsics.pinhole(focal, width, height)
    uv = camera.project(pts, c2w, cam)
    inside = (uv[:, 0] > 0.5) & (uv[:, 0] < width - 0.5) & (uv[:, 1] > 0.5) & (uv[:, 1] < height - 0.5)
    pts, uv = pts[inside], uv[inside]
    assert len(pts) > 50
    rays = camera.generate_rays(c2w[None], cam.take(None), height, width, 2.0, 6.0)
    # Cast back: the ray of the nearest pixel centre passes within half a pixel of the point.
    i, j = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
    o, d = rays.origins[0, j, i], rays.viewdirs[0, j, i]
    to_pt = pts - o
    dist = np.linalg.norm(to_pt - np.sum(to_pt * d, -1, keepdims=True) * d, axis=-1)
    depth = np.linalg.norm(to_pt, axis=-1)
    pixel_angle = 1.0 / focal
    assert np.all(dist <= depth * pixel_angle * 0.75)
    # Exactly at a pixel centre, the point projects back onto that centre.
    p = o[0] + 3.0 * rays.directions[0, j[0], i[0]]
    np.testing.assert_allclose(camera.project(p, c2w, cam), [i[0] + 0.5, j[0] + 0.5], atol=1e-4)


def test_camera_convention_up_is_image_top():
    height, width = 8, 8
    focal = camera.focal_from_fov(width, 0.69)
    c2w = camera.look_at(np.array([0.0, -4.0, 0.0]))  # looks along +Y, world +Z up
    rays = camera.generate_rays(c2w[None], camera.Intrinsics.pinhole(focal, width, height, 1), height, width, 2.0, 6.0)
    assert rays.directions[0, 0, 0, 2] > 0  # top row looks up
    assert rays.directions[0, 0, 0, 0] < 0  # left column looks left
    np.testing.assert_allclose(np.linalg.norm(rays.viewdirs, axis=-1), 1.0, rtol=1e-6)


def test_focal_and_radii():
    assert np.isclose(camera.focal_from_fov(800, 0.6911112070083618), 1111.1110311937682)
    focal = 50.0
    rays = camera.generate_rays(np.eye(4)[None], camera.Intrinsics.pinhole(focal, 10, 10, 1), 10, 10, 2.0, 6.0)
    # Neighbouring directions at the image centre are 1/focal apart.
    np.testing.assert_allclose(rays.radii[0, 5, 5, 0], (1 / focal) * 2 / np.sqrt(12), rtol=1e-3)
    assert rays.near.shape == rays.far.shape == (1, 10, 10, 1)
