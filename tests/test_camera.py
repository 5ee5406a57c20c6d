"""Cone-cast rays of a pinhole camera in the Blender convention."""

import numpy as np
from scipy.spatial.transform import Rotation

from mipnerf.cameras import camera, orbits


def test_rays_hit_projections_of_known_points():
    rng = np.random.default_rng(0)
    height, width = 30, 40
    focal = camera.focal_from_fov(width, 0.69)
    c2w = orbits.look_at(np.array([1.0, -3.5, 2.0]))
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
    c2w = orbits.look_at(np.array([0.0, -4.0, 0.0]))  # looks along +Y, world +Z up
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


def ring_cameras(count=30, seed=0):
    """Cameras on a noisy ellipse (semi-axes 3 and 2, height about 1) around a focus at (0.5, -0.3, 0.2)."""
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0, 2 * np.pi, count)
    eyes = np.stack([0.5 + 3 * np.cos(angles), -0.3 + 2 * np.sin(angles), 1 + 0.1 * rng.normal(size=count)], -1)
    return np.stack([orbits.look_at(eye, np.array([0.5, -0.3, 0.2])) for eye in eyes]), eyes


def test_ellipse_path_circles_the_focus_at_constant_speed():
    c2w, eyes = ring_cameras()
    poses = orbits.ellipse_path(c2w, 40)
    assert poses.shape == (40, 4, 4)
    positions = poses[:, :3, 3]
    np.testing.assert_allclose(positions[:, 2], np.mean(eyes[:, 2]))
    # On the ellipse through the 90th percentiles of the offsets, centred on the focus.
    semi = [np.percentile(np.abs(eyes[:, a] - [0.5, -0.3][a]), 90) for a in (0, 1)]
    np.testing.assert_allclose(((positions[:, 0] - 0.5) / semi[0]) ** 2 + ((positions[:, 1] + 0.3) / semi[1]) ** 2, 1.0,
                               rtol=1e-6)
    # Equal steps along it, the last leading back to the first (with frames close enough for chords
    # to measure arc length).
    fine = orbits.ellipse_path(c2w, 2000)[:, :3, 3]
    steps = np.linalg.norm(np.diff(np.concatenate([fine, fine[:1]]), axis=0), axis=-1)
    np.testing.assert_allclose(steps, np.mean(steps), rtol=1e-4)
    # Looking at the focus, image top up.
    to_focus = np.array([0.5, -0.3, 0.2]) - positions
    np.testing.assert_allclose(-poses[:, :3, 2], to_focus / np.linalg.norm(to_focus, axis=-1, keepdims=True), atol=1e-6)
    assert np.all(poses[:, 2, 1] > 0)


def test_forward_facing_spiral_looks_at_the_focus_depth():
    rng = np.random.default_rng(1)
    # Forward-facing cameras near the origin looking down -z.
    c2w = np.tile(np.eye(4), (12, 1, 1))
    c2w[:, :3, 3] = rng.normal(size=(12, 3)) * [0.3, 0.2, 0.05]
    c2w[:, :3, 3] -= c2w[:, :3, 3].mean(axis=0)
    bounds = np.array([[1.5, 40.0]] * 12)
    poses = orbits.forward_facing_spiral(c2w, bounds, 60, turns=2)
    focus = 1 / (0.25 / (0.9 * 1.5) + 0.75 / (5 * 40.0))
    radii = np.percentile(np.abs(c2w[:, :3, 3]), 90, axis=0)
    positions = poses[:, :3, 3]
    np.testing.assert_allclose(np.max(np.abs(positions), axis=0), radii, rtol=0.02)
    to_focus = np.array([0.0, 0.0, -focus]) - positions
    np.testing.assert_allclose(-poses[:, :3, 2], to_focus / np.linalg.norm(to_focus, axis=-1, keepdims=True), atol=1e-9)
    # Two turns: x = r cos(a) changes sign four times.
    assert np.sum(np.diff(np.sign(positions[:, 0])) != 0) == 4
    assert np.all(poses[:, 1, 1] > 0.9)


def test_ndc_rays_cover_the_frustum_from_the_near_plane_to_infinity():
    height, width, focal = 6, 8, 10.0
    cam = camera.Intrinsics.pinhole(focal, width, height)
    c2w = np.eye(4)
    c2w[:3, 3] = [0.1, -0.05, 0.2]
    world = camera.generate_rays(c2w[None], cam.take(None), height, width, 0.0, 1.0)
    ndc = camera.generate_rays(c2w[None], cam.take(None), height, width, 0.0, 1.0, ndc=True)
    o, d = ndc.origins[0].reshape(-1, 3), ndc.directions[0].reshape(-1, 3)
    # t = 0 is the near plane z = -1 (NDC z = -1), t = 1 is infinitely far (NDC z = 1).
    np.testing.assert_allclose(o[:, 2], -1.0, atol=1e-6)
    np.testing.assert_allclose(o[:, 2] + d[:, 2], 1.0, atol=1e-6)
    # A world point on a ray maps to the NDC point on the NDC ray: x_ndc = -(2f/W) x/z, z_ndc = 1 + 2/z.
    wo, wd = world.origins[0].reshape(-1, 3).astype(np.float64), world.directions[0].reshape(-1, 3)
    for depth in (2.0, 7.0):
        p = wo + wd * (depth + c2w[2, 3])  # directions have z = -1: this point is at z = -depth
        expected = np.stack([-(2 * focal / width) * p[:, 0] / p[:, 2], -(2 * focal / height) * p[:, 1] / p[:, 2],
                             1 + 2 / p[:, 2]], -1)
        t = (expected[:, 2] - o[:, 2]) / d[:, 2]
        np.testing.assert_allclose(o + t[:, None] * d, expected, atol=1e-5)
    np.testing.assert_allclose(ndc.viewdirs, world.viewdirs)
    assert np.all(ndc.radii > 0)


def test_ndc_radii_are_the_pixel_footprint_on_the_near_plane():
    """Radii against a finite difference: the distance between the NDC points where neighbouring
    pixels' world rays cross the near plane z = -1, scaled to the footprint's standard deviation."""
    height, width, focal = 6, 8, 10.0
    cam = camera.Intrinsics.pinhole(focal, width, height)
    c2w = np.eye(4)
    c2w[:3, :3] = Rotation.from_rotvec([0.05, -0.08, 0.03]).as_matrix()  # turned, as LLFF's cameras are
    c2w[:3, 3] = [0.1, -0.05, 0.2]
    world = camera.generate_rays(c2w[None], cam.take(None), height, width, 0.0, 1.0)
    ndc = camera.generate_rays(c2w[None], cam.take(None), height, width, 0.0, 1.0, ndc=True)
    o, d = world.origins[0].astype(np.float64), world.directions[0].astype(np.float64)
    p = o + d * ((-1.0 - o[..., 2:]) / d[..., 2:])
    in_ndc = np.stack([-(2 * focal / width) * p[..., 0] / p[..., 2], -(2 * focal / height) * p[..., 1] / p[..., 2]], -1)
    step = np.linalg.norm(np.diff(in_ndc, axis=1), axis=-1)  # pixel (i, j) to (i + 1, j)
    np.testing.assert_allclose(ndc.radii[0, :, :-1, 0], step * 2 / np.sqrt(12), rtol=1e-6)
