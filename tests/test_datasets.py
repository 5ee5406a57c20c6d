"""The nerf_synthetic loader and the built-in demo scene."""

import functools
import json

import numpy as np
import pytest
from PIL import Image

from helpers import assert_cameras_alone_match, tiny_config
from mipnerf.cameras import camera
from mipnerf.datasets import blender, multiscale
from mipnerf.datasets.builtin import demo
from mipnerf.errors import DatasetError

ANGLE = 0.69
NEAREST = 0.5 + 1e-4  # uint8 levels: rounded to the nearest, up to float32 error at a tie


def _write_scene(root, images, poses, file_paths, angle=ANGLE, split="train"):
    """Writes a nerf_synthetic split: `images[k]` is saved at `file_paths[k]` (plus .png if absent)."""
    frames = []
    for image, pose, file_path in zip(images, poses, file_paths):
        path = root / (file_path if file_path.endswith(".png") else file_path + ".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
        frames.append({"file_path": file_path, "transform_matrix": pose.tolist()})
    (root / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": angle, "frames": frames}))


@pytest.fixture
def scene(tmp_path):
    """Three 4x6 RGBA frames listed out of name order, with and without the .png extension."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 4, 6, 4), dtype=np.uint8)
    images[:, 0, 0, 3], images[:, 0, 1, 3] = 0, 255  # fully transparent and fully opaque pixels
    poses = rng.normal(size=(3, 4, 4))
    file_paths = ["./train/r_2", "./train/r_0.png", "train/r_1"]
    _write_scene(tmp_path, images, poses, file_paths)
    return tmp_path, images, poses


def test_round_trip_composites_and_keeps_frame_order(scene):
    root, images, poses = scene
    rgb, alpha = images[..., :3] / 255.0, images[..., 3:] / 255.0
    white = blender.load_split(root, "train")
    black = blender.load_split(root, "train", white_background=False)
    # Kept as uint8: the composite rounded to the nearest level.
    assert white.images.dtype == np.uint8 and white.images.shape == (3, 4, 6, 3)
    np.testing.assert_allclose(white.images, (rgb * alpha + 1.0 - alpha) * 255, atol=NEAREST)
    np.testing.assert_allclose(black.images, rgb * alpha * 255, atol=NEAREST)
    np.testing.assert_allclose(white.colors(slice(None))[:, 0, 0], 1.0)
    assert [p.rsplit("/", 1)[-1] for p in white.files] == ["r_2.png", "r_0.png", "r_1.png"]
    np.testing.assert_allclose(white.camtoworlds, poses.astype(np.float32))
    assert (white.height, white.width) == (4, 6)
    focal = 0.5 * 6 / np.tan(0.5 * ANGLE)
    np.testing.assert_allclose(np.stack(white.intrinsics[:4], -1), [[focal, focal, 3.0, 2.0]] * 3)
    assert not np.any(white.intrinsics.distortion) and not np.any(white.intrinsics.fisheye)


def test_downsampling_is_a_block_mean(scene):
    root, _, poses = scene
    full = blender.load_split(root, "train")
    half = blender.load_split(root, "train", factor=2)
    assert (half.height, half.width) == (2, 3)
    # The area average of the decoded colours, rounded once to uint8.
    root_images = np.stack([np.asarray(Image.open(p)).astype(np.float64) / 255 for p in full.files])
    rgb, alpha = root_images[..., :3], root_images[..., 3:]
    expected = (rgb * alpha + 1.0 - alpha).reshape(3, 2, 2, 3, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(half.images, expected * 255, atol=NEAREST)
    np.testing.assert_allclose(half.colors(slice(None)), half.images / 255, atol=1e-7)
    np.testing.assert_allclose(half.intrinsics.fx, 0.5 * 3 / np.tan(0.5 * ANGLE))
    np.testing.assert_allclose(half.intrinsics.cx, 1.5)
    np.testing.assert_allclose(half.camtoworlds, full.camtoworlds)


def test_rgb_and_16_bit_images_are_accepted(tmp_path):
    rgb = np.array([[[0, 128, 255], [10, 20, 30]]], dtype=np.uint8)
    gray16 = np.array([[0, 65535]], dtype=np.uint16)
    _write_scene(tmp_path, [rgb, gray16], np.eye(4)[None].repeat(2, 0), ["a", "b"])
    split = blender.load_split(tmp_path, "train")
    np.testing.assert_array_equal(split.images[0], rgb)
    np.testing.assert_array_equal(split.images[1], [[[0] * 3, [255] * 3]])


def _edit_json(root, edit):
    path = root / "transforms_train.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _resave(root, name, array):
    Image.fromarray(array).save(root / name)


def _write(root, name, text):
    (root / name).write_text(text)


def _set_matrix(meta, matrix):
    meta["frames"][2]["transform_matrix"] = matrix


# Each breaks the fixture's scene in one way; the error message must match the pattern.
BREAKAGES = {
    "missing json": (lambda root: (root / "transforms_train.json").unlink(), "transforms_train.json"),
    "broken json": (lambda root: _write(root, "transforms_train.json", '{"frames": [\n  {"file_path": }'), "line 2"),
    "json not an object": (lambda root: _write(root, "transforms_train.json", "[1, 2]"), "transforms_train.json"),
    "no frames": (lambda root: _edit_json(root, lambda m: m.pop("frames")), "frames"),
    "empty frames": (lambda root: _edit_json(root, lambda m: m.update(frames=[])), "frames"),
    "no camera_angle_x": (lambda root: _edit_json(root, lambda m: m.pop("camera_angle_x")), "camera_angle_x"),
    "no file_path": (lambda root: _edit_json(root, lambda m: m["frames"][1].pop("file_path")), "frame 1"),
    "3x4 matrix": (lambda root: _edit_json(root, lambda m: _set_matrix(m, [[0] * 4] * 3)), "frame 2"),
    "text matrix": (lambda root: _edit_json(root, lambda m: _set_matrix(m, [["a"] * 4] * 4)), "transform_matrix"),
    "missing image": (lambda root: (root / "train" / "r_1.png").unlink(), "r_1.png"),
    "not an image": (lambda root: _write(root, "train/r_1.png", "not a png"), "r_1.png"),
    "size mismatch": (lambda root: _resave(root, "train/r_1.png", np.zeros((4, 4, 4), np.uint8)), "r_1.png is 4x4.*6x4"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_bad_input_raises_dataset_error_naming_the_file(scene, breakage):
    root = scene[0]
    damage, expected = BREAKAGES[breakage]
    damage(root)
    with pytest.raises(DatasetError, match=expected) as info:
        blender.load_split(root, "train")
    message = str(info.value)
    assert str(root) in message and "\n" not in message


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_png_raises_dataset_error(scene, keep):
    root = scene[0]
    path = root / "train" / "r_0.png"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DatasetError, match="r_0.png"):
        blender.load_split(root, "train")


def test_missing_folder_and_indivisible_factor_raise_dataset_error(scene):
    root = scene[0]
    with pytest.raises(DatasetError, match="nowhere"):
        blender.load_split(root / "nowhere", "train")
    with pytest.raises(DatasetError, match="6x4.*factor 4"):
        blender.load_split(root, "train", factor=4)
    with pytest.raises(DatasetError, match="transforms_val.json"):
        blender.load_split(root, "val")


SMALL = dict(size=32, n_train=4, n_val=2, n_test=2, spp=2)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    demo.render_demo_scene(root, **SMALL)
    return root


def _alpha(root, split):
    """Alpha [N, H, W] recovered from the white and black composites of the loader."""
    white = blender.load_split(root, split)
    black = blender.load_split(root, split, white_background=False)
    return 1.0 - (white.colors(slice(None)) - black.colors(slice(None))).mean(axis=-1), white


def test_demo_scene_loads_with_background_and_foreground(demo_root):
    for split, count in (("train", 4), ("val", 2), ("test", 2)):
        alpha, loaded = _alpha(demo_root, split)
        assert loaded.images.shape == (count, 32, 32, 3)
        np.testing.assert_allclose(loaded.intrinsics.fx, camera.focal_from_fov(32, demo.CAMERA_ANGLE_X))
        for a in alpha:
            assert np.mean(a < 0.01) > 0.2 and np.mean(a > 0.99) > 0.1
    meta = json.loads((demo_root / "transforms_train.json").read_text())
    assert meta["frames"][0]["file_path"] == "./train/r_0"
    eyes = blender.load_split(demo_root, "train").camtoworlds[:, :3, 3]
    np.testing.assert_allclose(np.linalg.norm(eyes, axis=-1), demo.CAMERA_RADIUS, rtol=1e-5)
    assert np.all(eyes[:, 2] > 0)


def test_demo_scene_cameras_see_the_centre_and_not_the_corners(demo_root):
    alpha, loaded = _alpha(demo_root, "test")
    for n, (a, c2w) in enumerate(zip(alpha, loaded.camtoworlds)):
        # The looked-at origin is the centre of the large sphere.
        u, v = camera.project(np.zeros(3), c2w, loaded.intrinsics.take(n))
        assert a[int(v), int(u)] > 0.99
        assert np.all(a[[0, 0, -1, -1], [0, -1, 0, -1]] < 0.01)


def test_demo_scene_is_deterministic(demo_root, tmp_path):
    demo.render_demo_scene(tmp_path, **SMALL)
    files = sorted(p.relative_to(demo_root) for p in demo_root.rglob("*") if p.is_file())
    assert len(files) == 3 + 8
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    for f in files:
        assert (demo_root / f).read_bytes() == (tmp_path / f).read_bytes(), f


def test_subpixel_directions_follow_the_camera_convention():
    focal = camera.focal_from_fov(6, ANGLE)
    centres = camera.pixel_directions(6, 6, camera.Intrinsics.pinhole(focal, 6, 6))
    np.testing.assert_allclose(demo.subpixel_directions(6, focal, 1)[:, :, 0], centres)
    sub = demo.subpixel_directions(6, focal, 3)
    np.testing.assert_allclose(sub.mean(axis=2), centres, atol=1e-12)
    np.testing.assert_allclose(sub[2, 1, 5], [(1 + 2.5 / 3 - 3) / focal, -(2 + 1.5 / 3 - 3) / focal, -1.0])


def test_demo_supersampling_is_the_area_average(tmp_path):
    # 2x2 sub-rays of a 16-pixel image pass through the pixel centres of the 32-pixel image.
    demo.render_demo_scene(tmp_path / "aa", size=16, n_train=2, n_val=1, n_test=1, spp=2)
    demo.render_demo_scene(tmp_path / "big", size=32, n_train=2, n_val=1, n_test=1, spp=1)
    small = blender.load_split(tmp_path / "aa", "train").colors(slice(None))
    pooled = blender.load_split(tmp_path / "big", "train", factor=2).colors(slice(None))
    assert np.mean(np.abs(small - pooled)) < 2e-3
    assert np.quantile(np.abs(small - pooled), 0.99) < 3 / 255


@pytest.fixture
def quick_render(monkeypatch):
    """Makes `demo_scene_dir` render a tiny scene, and counts its renders."""
    calls = []
    render = functools.partial(demo.render_demo_scene, size=8, n_train=2, n_val=1, n_test=1, spp=1)
    monkeypatch.setattr(demo, "render_demo_scene", lambda out_dir: (calls.append(out_dir), render(out_dir)))
    return calls


def test_demo_scene_dir_renders_once(tmp_path, quick_render):
    root = demo.demo_scene_dir(cache_dir=tmp_path)
    assert root.parent == tmp_path and root.name == f"demo_{demo.VERSION}"
    assert blender.load_split(root, "train").images.shape == (2, 8, 8, 3)
    mtime = (root / "train" / "r_0.png").stat().st_mtime_ns
    assert demo.demo_scene_dir(cache_dir=str(tmp_path)) == root
    assert len(quick_render) == 1
    assert (root / "train" / "r_0.png").stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [root.name]


def test_demo_scene_dir_uses_the_cache_variable(tmp_path, monkeypatch, quick_render):
    monkeypatch.setenv("MIPNERF_CACHE", str(tmp_path / "cache"))
    assert demo.demo_scene_dir() == tmp_path / "cache" / f"demo_{demo.VERSION}"
    assert len(quick_render) == 1


def test_interrupted_render_leaves_no_scene(tmp_path, monkeypatch):
    def interrupted(out_dir):
        (out_dir / "transforms_train.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "render_demo_scene", interrupted)
    with pytest.raises(KeyboardInterrupt):
        demo.demo_scene_dir(cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_concurrent_render_keeps_the_first_scene(tmp_path, monkeypatch, quick_render):
    target = tmp_path / f"demo_{demo.VERSION}"
    render = demo.render_demo_scene

    def racing(out_dir):
        render(out_dir)
        target.mkdir()  # another process finishes first
        (target / "marker").write_text("first")

    monkeypatch.setattr(demo, "render_demo_scene", racing)
    assert demo.demo_scene_dir(cache_dir=tmp_path) == target
    assert [p.name for p in target.iterdir()] == ["marker"]
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_unwritable_cache_raises_dataset_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DatasetError, match="MIPNERF_CACHE"):
        demo.demo_scene_dir(cache_dir=blocker)


@pytest.mark.parametrize("dataset", ["blender", "multiscale"])
def test_a_split_s_cameras_load_without_its_images(tiny_scene, tmp_path, dataset):
    scene = tiny_scene
    if dataset == "multiscale":
        scene = tmp_path / "multiscale"
        multiscale.convert(tiny_scene, scene, scales=3)
    for factor in (1, 2) if dataset == "blender" else (1,):
        assert_cameras_alone_match(tiny_config(scene, tmp_path / "exp", dataset=dataset, factor=factor), "train")
