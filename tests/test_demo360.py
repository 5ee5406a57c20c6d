"""The built-in unbounded scene, written in the mip-NeRF 360 (COLMAP) layout."""

import functools

import numpy as np
import pytest
from PIL import Image

from mipnerf.cameras import conventions
from mipnerf.datasets import colmap_model, scene_frame
from mipnerf.datasets.builtin import demo360, raytrace

SMALL = dict(width=24, height=16, n_images=8, spp=2)
NAMES = [f"IMG_{k:04d}.png" for k in range(8)]
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0])


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo360")
    demo360.render_demo360_scene(out, **SMALL)
    return out


@pytest.fixture(scope="module")
def model(root):
    return colmap_model.read_model(root / "sparse" / "0")


def _pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "RGB"
        return np.asarray(image)


def _camtoworld(image: colmap_model.Image) -> np.ndarray:
    """[4, 4] OpenGL camera-to-world matrix of a COLMAP world-to-camera pose."""
    rotation = conventions.quaternion_to_matrix(image.qvec)
    c2w = np.eye(4)
    c2w[:3, :3], c2w[:3, 3] = rotation.T @ OPENCV_TO_OPENGL, -rotation.T @ image.tvec
    return c2w


def test_render_is_deterministic(root, tmp_path):
    demo360.render_demo360_scene(tmp_path, **SMALL)
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert len(files) == 2 * 8 + 3 + 1
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    for f in files:
        assert (root / f).read_bytes() == (tmp_path / f).read_bytes(), f


def test_layout_and_half_resolution_images(root):
    assert sorted(p.name for p in (root / "images").iterdir()) == NAMES
    assert sorted(p.name for p in (root / "images_2").iterdir()) == NAMES
    assert sorted(p.name for p in (root / "sparse" / "0").iterdir()) == ["cameras.bin", "images.bin", "points3D.bin"]
    for name in NAMES:
        full, half = _pixels(root / "images" / name), _pixels(root / "images_2" / name)
        assert full.shape == (16, 24, 3) and half.shape == (8, 12, 3)
        pooled = full.reshape(8, 2, 12, 2, 3).mean(axis=(1, 3))
        assert np.abs(half - pooled).max() <= 1.0  # both rounded from the same float render


def test_supersampling_is_the_area_average(tmp_path):
    # The 2x2 sub-rays of a 24x16 view pass through the pixel centres of the 48x32 view.
    demo360.render_demo360_scene(tmp_path / "aa", width=24, height=16, n_images=2, spp=2)
    demo360.render_demo360_scene(tmp_path / "big", width=48, height=32, n_images=2, spp=1)
    for name in NAMES[:2]:
        small = _pixels(tmp_path / "aa" / "images" / name).astype(int)
        pooled = _pixels(tmp_path / "big" / "images_2" / name).astype(int)
        assert np.abs(small - pooled).max() <= 1


def test_one_pinhole_camera_and_every_image(model):
    focal = demo360.focal_length(16)
    assert list(model.cameras) == [1]
    camera = model.cameras[1]
    assert (camera.model, camera.width, camera.height) == ("PINHOLE", 24, 16)
    np.testing.assert_allclose(camera.params, [focal, focal, 12.0, 8.0])
    assert sorted(model.images) == list(range(1, 9))
    assert [model.images[i].name for i in range(1, 9)] == NAMES
    assert all(im.camera_id == 1 for im in model.images.values())


def test_poses_are_the_scene_cameras_in_the_colmap_frame(model):
    c2ws = np.stack([_camtoworld(model.images[i]) for i in range(1, 9)])
    expected = scene_frame.transform_poses(demo360.COLMAP_FROM_SCENE, demo360.camera_poses(8))
    np.testing.assert_allclose(c2ws, expected, atol=1e-9)
    # No axis of the scene (its "up" included) lies near an axis of the COLMAP frame.
    assert np.abs(demo360.COLMAP_ROTATION).max() < 0.8
    # In the scene frame the cameras ring the centre, above the ground, looking slightly down.
    scene = demo360.camera_poses(8)
    radius, height = np.linalg.norm(scene[:, :2, 3], axis=-1), scene[:, 2, 3]
    assert np.all((radius >= 2.5) & (radius <= 3.5)) and np.all((height >= 0.6) & (height <= 1.4))
    azimuths = np.sort(np.arctan2(scene[:, 1, 3], scene[:, 0, 3]))
    assert np.diff(np.concatenate([azimuths, azimuths[:1] + 2 * np.pi])).max() < np.pi / 2
    assert np.all(scene[:, 2, 2] > 0)  # -Z (forward) points down


def test_points_project_onto_their_observations(model):
    points = model.points
    assert len(points.ids) > 1000
    np.testing.assert_array_equal(points.ids, np.arange(1, len(points.ids) + 1))
    row = {int(i): k for k, i in enumerate(points.ids)}
    fx, fy, cx, cy = model.cameras[1].params
    for im in model.images.values():
        assert len(im.xys) >= 300 and np.all(im.point3d_ids >= 1)
        assert len(set(im.point3d_ids.tolist())) == len(im.point3d_ids)
        x, y, z = (points.xyz[[row[i] for i in im.point3d_ids]] @ conventions.quaternion_to_matrix(im.qvec).T + im.tvec).T
        assert np.all(z > 0)
        np.testing.assert_allclose(im.xys, np.stack([fx * x / z + cx, fy * y / z + cy], -1), rtol=0, atol=1e-6)
        assert np.all((im.xys >= 0) & (im.xys < [24, 16]))


def test_tracks_match_the_images(model):
    points = model.points
    assert len(points.tracks) == len(points.ids) and points.rgb.dtype == np.uint8
    entries = 0
    for point_id, track in zip(points.ids, points.tracks):
        assert track.shape[1] == 2 and len(track) >= 2
        assert len(set(track[:, 0].tolist())) == len(track)
        for image_id, index in track:
            assert model.images[image_id].point3d_ids[index] == point_id
        entries += len(track)
    assert entries == sum(len(im.point3d_ids) for im in model.images.values())
    np.testing.assert_array_equal(points.errors, 0.0)


def test_poses_bounds_match_the_model(root, model):
    data = np.load(root / "poses_bounds.npy")
    assert data.shape == (8, 17) and data.dtype == np.float64
    poses = data[:, :15].reshape(8, 3, 5)
    c2ws = np.stack([_camtoworld(model.images[i]) for i in range(1, 9)])
    np.testing.assert_allclose(np.stack([poses[:, :, 1], -poses[:, :, 0], poses[:, :, 2]], -1), c2ws[:, :3, :3],
                               atol=1e-12)
    np.testing.assert_allclose(poses[:, :, 3], c2ws[:, :3, 3], atol=1e-12)
    np.testing.assert_allclose(poses[:, :, 4], np.tile([16, 24, demo360.focal_length(16)], (8, 1)))
    row = {int(i): k for k, i in enumerate(model.points.ids)}
    for n in range(8):
        im = model.images[n + 1]
        xyz = model.points.xyz[[row[i] for i in im.point3d_ids]]
        depths = xyz @ conventions.quaternion_to_matrix(im.qvec)[2] + im.tvec[2]
        np.testing.assert_allclose(data[n, 15:], np.percentile(depths, [0.1, 99.9]))
    # The scene reaches from the central shapes to the far pillars (in COLMAP units).
    assert np.all(data[:, 15] > 0.5 * demo360.COLMAP_SCALE) and np.all(data[:, 16] > 8 * demo360.COLMAP_SCALE)


def test_views_show_ground_and_a_textured_sky(tmp_path):
    # At one ray per pixel a pixel is the colour of the ray through its centre.
    width, height = 48, 32
    demo360.render_demo360_scene(tmp_path, width=width, height=height, n_images=4, spp=1)
    cam_dirs = raytrace.subpixel_directions(height, width, demo360.focal_length(height), 1).astype(np.float32)
    for name, c2w in zip(NAMES, demo360.camera_poses(4)):
        rays = c2w[:3, :3].astype(np.float32) @ cam_dirs.reshape(-1, 3).T  # as the renderer traces them
        dirs = rays / np.sqrt(raytrace.dot(rays, rays))
        t, shape_ids = demo360.trace(c2w[:3, 3:4].astype(np.float32), dirs)
        sky, ground = np.isinf(t), np.isfinite(t) & (shape_ids == 0)
        assert sky.mean() > 0.08 and ground.mean() > 0.3
        assert np.all(dirs[2, sky] > 0)  # the sky lies above the horizon
        pixels = _pixels(tmp_path / "images" / name).reshape(-1, 3) / 255.0
        expected = demo360.sky(dirs[:, sky]).T
        np.testing.assert_allclose(pixels[sky], expected, atol=0.5 / 255 + 1e-6)
        assert pixels[sky].std(axis=0).max() > 0.03
    # The sky is not a function of elevation alone: clouds and the sun's glow vary with azimuth.
    azimuth = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    ring = np.stack([np.cos(azimuth) * np.cos(0.2), np.sin(azimuth) * np.cos(0.2), np.full(360, np.sin(0.2))])
    assert demo360.sky(ring.astype(np.float32)).std(axis=1).min() > 0.03


@pytest.fixture
def quick_render(monkeypatch):
    """Makes `demo360_scene_dir` render a tiny scene, and counts its renders."""
    calls = []
    render = functools.partial(demo360.render_demo360_scene, width=8, height=6, n_images=4, spp=1)
    monkeypatch.setattr(demo360, "render_demo360_scene", lambda out_dir: (calls.append(out_dir), render(out_dir)))
    return calls


def test_scene_dir_renders_once(tmp_path, quick_render):
    root = demo360.demo360_scene_dir(cache_dir=tmp_path)
    assert root.parent == tmp_path and root.name == f"demo360_{demo360.VERSION}"
    assert len(colmap_model.read_model(root / "sparse" / "0").images) == 4
    mtime = (root / "images" / "IMG_0000.png").stat().st_mtime_ns
    assert demo360.demo360_scene_dir(cache_dir=str(tmp_path)) == root
    assert len(quick_render) == 1
    assert (root / "images" / "IMG_0000.png").stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [root.name]


def test_scene_dir_uses_the_cache_variable(tmp_path, monkeypatch, quick_render):
    monkeypatch.setenv("MIPNERF_CACHE", str(tmp_path / "cache"))
    assert demo360.demo360_scene_dir() == tmp_path / "cache" / f"demo360_{demo360.VERSION}"
    assert len(quick_render) == 1


@pytest.mark.parametrize("factor", [1, 2])
def test_loaded_rays_hit_the_scene_points(root, model, factor):
    """Through the COLMAP loader: every point an image sees lies on the ray through its observation,
    and projects onto it, in the normalised frame the loader puts the cameras in."""
    from mipnerf.cameras import camera
    from mipnerf.datasets import colmap

    split = colmap.load_split(root, "train", factor=factor, llffhold=0)
    assert split.images.shape == (8, SMALL["height"] // factor, SMALL["width"] // factor, 3)
    # The frame: cameras inside [-1, 1]^3 with +z up, and the scene's ground (z = 0, up +z) stays horizontal.
    centres = split.camtoworlds[:, :3, 3]
    assert np.max(np.abs(centres)) == pytest.approx(1.0, rel=1e-5)
    assert np.all(split.camtoworlds[:, 2, 1] > 0.9)
    scene_up = split.transform[:3, :3] @ demo360.COLMAP_FROM_SCENE[:3, 2]
    assert scene_up[2] / np.linalg.norm(scene_up) > np.cos(np.radians(5))
    positions = {pid: k for k, pid in enumerate(model.points.ids)}
    for n, image in enumerate(sorted(model.images.values(), key=lambda im: im.name)):
        points = scene_frame.transform_points(split.transform, model.points.xyz[[positions[i] for i in image.point3d_ids]])
        cam = split.intrinsics.take(n)
        np.testing.assert_allclose(camera.project(points, split.camtoworlds[n], cam), image.xys / factor, atol=1e-3)
        dirs = camera.image_point_directions(image.xys[:, 0] / factor, image.xys[:, 1] / factor, cam)
        dirs = dirs @ split.camtoworlds[n, :3, :3].T.astype(np.float64)
        dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
        offsets = points - split.camtoworlds[n, :3, 3]
        miss = np.linalg.norm(offsets - np.sum(offsets * dirs, -1, keepdims=True) * dirs, axis=-1)
        pixel_width = np.linalg.norm(offsets, axis=-1) * factor / cam.fx
        assert np.all(miss < 1e-3 * pixel_width)
