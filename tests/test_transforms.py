"""Captures described by a transforms.json (nerfstudio's and Instant-NGP's dialects), read against
the COLMAP loader on the same cameras; masks; bad input as one line through train.py."""

import importlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import captures
from helpers import ROOT, assert_cameras_alone_match, assert_one_line_error, tiny_config
from mipnerf import datasets
from mipnerf.cameras import camera
from mipnerf.commands import train
from mipnerf.commands.config_checks import check_config
from mipnerf.datasets import colmap, scene_frame, transforms
from mipnerf.datasets.builtin import demo360
from mipnerf.errors import DatasetError
from mipnerf.training import distributed, train_images

SMALL = dict(width=24, height=16, n_images=8, spp=2)


@pytest.fixture(scope="module")
def demo_scene(tmp_path_factory):
    """The built-in unbounded scene, small, with its COLMAP model and its transforms.json side by side."""
    out = tmp_path_factory.mktemp("demo360_transforms")
    demo360.render_demo360_scene(out, transforms=True, **SMALL)
    return out


def capture_config(root, dataset, **overrides):
    settings = dict(dataset=dataset, near=0.2, far=1e6, ray_spacing="disparity", contraction=True)
    return tiny_config(root, root / "exp", **{**settings, **overrides})


@pytest.mark.parametrize("factor", [1, 2])
def test_the_unbounded_demo_gives_the_rays_of_its_colmap_model(demo_scene, tmp_path, factor):
    """The same scene through its COLMAP model and through its transforms.json (nerfstudio's dialect,
    poses moved by applied_transform): the same images, cameras and rays, in the same model frame."""
    for split in ("train", "test"):
        through_colmap = datasets.load_split(capture_config(demo_scene, "colmap", factor=factor), split)
        config = capture_config(demo_scene, "transforms", factor=factor)
        loaded = datasets.load_split(config, split)
        assert loaded.files == through_colmap.files and len(loaded.files) == (7 if split == "train" else 1)
        np.testing.assert_array_equal(loaded.images, through_colmap.images)
        for got, want in zip(datasets.split_rays(loaded, config), datasets.split_rays(through_colmap, config)):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        assert loaded.masks is None and loaded.bounds is None
    # The poses were not moved by applied_transform a second time: the file's world maps to the model's
    # frame through the COLMAP world, and the run's transform.json records both.
    np.testing.assert_allclose(loaded.transform @ loaded.applied_transform, through_colmap.transform, atol=1e-12)
    train.save_transform(loaded.transform, tmp_path, loaded.applied_transform)
    record = json.loads((tmp_path / "transform.json").read_text())
    np.testing.assert_allclose(record["world_to_model"], loaded.transform)
    np.testing.assert_allclose(record["applied_transform"], np.concatenate([demo360.NERFSTUDIO_APPLIED, [[0, 0, 0, 1]]]))
    np.testing.assert_allclose(record["original_to_model"], through_colmap.transform, atol=1e-12)


@pytest.mark.parametrize("name", ["360", "demo360", "360_grid", "demo360_grid"])
def test_the_capture_configs_take_a_transforms_json(demo_scene, name):
    config = importlib.import_module(f"configs.{name}").get_config()
    config.dataset, config.data_dir = "transforms", str(demo_scene)
    check_config(config)
    split = datasets.load_split(config, "train")
    assert split.images.shape == (7, 16 // config.factor, 24 // config.factor, 3)


def write_transforms(root, meta: dict, frames: list) -> None:
    (root / "transforms.json").write_text(json.dumps(dict(meta, frames=frames)))


def instant_ngp(capture: dict, model: str) -> tuple[dict, list]:
    """Instant-NGP's colmap2nerf.py dialect of a one-camera capture: fields of view and is_fisheye at the top
    level, every distortion key, frames in reverse order with "./" paths and sharpness."""
    fx, fy, cx, cy, *k = captures.CAMERAS[model]
    w, h = captures.WIDTH, captures.HEIGHT
    meta = {"camera_angle_x": 2 * np.arctan(w / (2 * fx)), "camera_angle_y": 2 * np.arctan(h / (2 * fy)),
            "cx": cx, "cy": cy, "w": float(w), "h": float(h), "aabb_scale": 16, "is_fisheye": model == "OPENCV_FISHEYE"}
    keys = ("k1", "k2", "k3", "k4") if model == "OPENCV_FISHEYE" else ("k1", "k2", "p1", "p2")
    meta.update(dict.fromkeys(("k1", "k2", "k3", "k4", "p1", "p2"), 0.0), **dict(zip(keys, k)))
    frames = [{"file_path": f"./images/img_{n:03d}.png", "sharpness": 100.0, "transform_matrix": pose.tolist()}
              for n, pose in enumerate(capture["poses"])]
    return meta, frames[::-1]


def nerfstudio_camera(model: str) -> dict:
    """The fields ns-process-data writes for a COLMAP camera of `captures.CAMERAS`."""
    p = captures.CAMERAS[model]
    if model == "RADIAL":
        return dict(fl_x=p[0], fl_y=p[0], cx=p[1], cy=p[2], k1=p[3], k2=p[4])
    return dict(fl_x=p[0], fl_y=p[1], cx=p[2], cy=p[3], **dict(zip(("k1", "k2", "p1", "p2"), p[4:])))


def nerfstudio_per_frame(capture: dict, models=("PINHOLE",)) -> tuple[dict, list]:
    """nerfstudio's dialect with each frame's own camera (fl_x, fl_y, cx, cy, w, h, k's), frame n's model
    models[n % len(models)] as `captures.write_capture` gives them."""
    frames = [{"file_path": f"images/img_{n:03d}.png", "transform_matrix": pose.tolist(), "w": captures.WIDTH,
               "h": captures.HEIGHT, **nerfstudio_camera(models[n % len(models)])}
              for n, pose in enumerate(capture["poses"])]
    return {"camera_model": "OPENCV"}, frames


@pytest.mark.parametrize("dialect,models", [("instant-ngp", ("OPENCV",)), ("instant-ngp", ("OPENCV_FISHEYE",)),
                                            ("nerfstudio", ("PINHOLE", "OPENCV", "RADIAL"))])
def test_both_dialects_and_per_frame_intrinsics_load_as_the_colmap_model(tmp_path, dialect, models):
    capture = captures.write_capture(tmp_path, count=9, models=models, factors=())
    meta, frames = instant_ngp(capture, models[0]) if dialect == "instant-ngp" else nerfstudio_per_frame(capture, models)
    write_transforms(tmp_path, meta, frames)
    for split in ("train", "test"):
        loaded, through_colmap = transforms.load_split(tmp_path, split), colmap.load_split(tmp_path, split)
        assert [f.rsplit("/", 1)[-1] for f in loaded.files] == [f.rsplit("/", 1)[-1] for f in through_colmap.files]
        np.testing.assert_array_equal(loaded.images, through_colmap.images)
        np.testing.assert_allclose(loaded.camtoworlds, through_colmap.camtoworlds, atol=1e-6)
        for got, want in zip(loaded.intrinsics, through_colmap.intrinsics):
            np.testing.assert_allclose(got, want, rtol=1e-12)
    assert loaded.applied_transform is None


def reference_opencv(points_cam: np.ndarray, fx, fy, cx, cy, k1, k2, k3, k4, p1, p2) -> np.ndarray:
    """Pixels [P, 2] of camera-space points [P, 3] (+Z forward) under nerfstudio's OPENCV model."""
    a, b = points_cam[:, 0] / points_cam[:, 2], points_cam[:, 1] / points_cam[:, 2]
    r2 = a * a + b * b
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3 + k4 * r2**4
    xd = a * radial + 2 * p1 * a * b + p2 * (r2 + 2 * a * a)
    yd = b * radial + p1 * (r2 + 2 * b * b) + 2 * p2 * a * b
    return np.stack([fx * xd + cx, fy * yd + cy], axis=-1)


def test_opencv_k3_and_k4_are_undone_per_ray(tmp_path):
    """Radial terms in r^6 and r^8 (nerfstudio's k3 and k4): points along each ray project back onto its pixel."""
    capture = captures.write_capture(tmp_path, count=3, factors=())
    params = dict(fl_x=40.0, fl_y=39.0, cx=24.5, cy=15.5, k1=-0.1, k2=0.02, k3=-0.004, k4=0.001, p1=0.003, p2=-0.002)
    frames = [{"file_path": f"images/img_{n:03d}.png", "transform_matrix": pose.tolist()}
              for n, pose in enumerate(capture["poses"])]
    write_transforms(tmp_path, dict(params, camera_model="OPENCV", w=captures.WIDTH, h=captures.HEIGHT), frames)
    split = transforms.load_split(tmp_path, "train", llffhold=0)
    rays = camera.generate_rays(split.camtoworlds, split.intrinsics, split.height, split.width, 0.0, 1.0)
    j, i = np.mgrid[0:captures.HEIGHT:3, 0:captures.WIDTH:3]
    for n, pose in enumerate(capture["poses"]):
        o, d = rays.origins[n, ::3, ::3].reshape(-1, 3), rays.directions[n, ::3, ::3].reshape(-1, 3)
        world = scene_frame.transform_points(np.linalg.inv(split.transform), o + 2.0 * d.astype(np.float64))
        in_cam = (world - pose[:3, 3]) @ (pose[:3, :3] @ captures.OPENCV_TO_OPENGL)
        uv = reference_opencv(in_cam, *(params[k] for k in ("fl_x", "fl_y", "cx", "cy", "k1", "k2", "k3", "k4", "p1", "p2")))
        np.testing.assert_allclose(uv, np.stack([i.ravel() + 0.5, j.ravel() + 0.5], -1), atol=1e-3)


def write_masks(root, count: int, factor: int = 0) -> np.ndarray:
    """Masks for frames 0..count-1 (0 where masked out) in masks/, and with `factor` their downsampled
    copies in masks_<factor>/; returns them [count, H, W] bool."""
    rng = np.random.default_rng(3)
    masks = np.ones((count, captures.HEIGHT, captures.WIDTH), bool)
    for n, mask in enumerate(masks):
        top, left = rng.integers(0, 16, 2)
        mask[top:top + 12, left:left + 20] = False
        mask[rng.integers(0, captures.HEIGHT), rng.integers(0, captures.WIDTH)] = False
        (root / "masks").mkdir(exist_ok=True)
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"img_{n:03d}.png")
        if factor:
            (root / f"masks_{factor}").mkdir(exist_ok=True)
            small = mask.reshape(captures.HEIGHT // factor, factor, captures.WIDTH // factor, factor).all(axis=(1, 3))
            Image.fromarray(small.astype(np.uint8)).save(root / f"masks_{factor}" / f"img_{n:03d}.png")
    return masks


@pytest.mark.parametrize("dataset", ["colmap", "transforms"])
def test_a_capture_s_cameras_load_without_its_images_in_the_same_frame(demo_scene, dataset):
    for split in ("train", "test"):
        assert_cameras_alone_match(capture_config(demo_scene, dataset, factor=2), split)


@pytest.mark.parametrize("masks_n", [True, False], ids=["masks_2", "downsampled"])
def test_masks_keep_their_pixels_out_of_training(tmp_path, masks_n):
    capture = captures.write_capture(tmp_path, count=9, factors=(2,))
    masks = write_masks(tmp_path, 8, factor=2 if masks_n else 0)
    meta, frames = nerfstudio_per_frame(capture)
    for n, frame in enumerate(frames[:8]):  # the last frame has no mask: every pixel kept
        frame["mask_path"] = f"masks/img_{n:03d}.png"
    write_transforms(tmp_path, meta, frames)
    config = capture_config(tmp_path, "transforms", factor=2, llffhold=0)
    split = datasets.load_split(config, "train")
    assert split.files[0].endswith("images_2/img_000.png") and split.masks.shape == (9, 16, 24)
    # A pixel at factor 2 is kept only where its whole 2x2 block was.
    expected = np.concatenate([masks.reshape(8, 16, 2, 24, 2).all(axis=(2, 4)), np.ones((1, 16, 24), bool)])
    np.testing.assert_array_equal(split.masks, expected)
    images = train_images.put_train_images([split], config, distributed.make_mesh())
    np.testing.assert_array_equal(np.asarray(images.pixels)[:int(images.counts.sum())], split.images[split.masks])


def _edit(root, edit):
    meta = json.loads((root / "transforms.json").read_text())
    edit(meta)
    (root / "transforms.json").write_text(json.dumps(meta))


def _set(frame: int, **fields):
    return lambda meta: meta["frames"][frame].update(fields)


def _resize(root, name, size):
    Image.fromarray(np.zeros(size[::-1] + (3,), np.uint8)).save(root / "images" / name)


# Each breaks a 10-frame nerfstudio capture with top-level intrinsics in one way: (damage, needles).
BREAKAGES = {
    "no focal length": (lambda r: _edit(r, lambda m: [m.pop(k) for k in ("fl_x", "fl_y")]),
                        ["frame 0 (images/img_000.png)", "'fl_x' or 'camera_angle_x'"]),
    "text intrinsic": (lambda r: _edit(r, _set(3, cx="middle")), ["frame 3 (images/img_003.png)", "'cx'", "a number"]),
    "3x4 matrix": (lambda r: _edit(r, _set(5, transform_matrix=[[1, 0, 0, 0]] * 3)),
                   ["frame 5 (images/img_005.png)", "'transform_matrix'", "4x4"]),
    "scaled matrix": (lambda r: _edit(r, _set(2, transform_matrix=(2 * np.eye(4)).tolist())),
                      ["frame 2 (images/img_002.png)", "'transform_matrix'", "rigid"]),
    "missing image": (lambda r: (r / "images" / "img_004.png").unlink(), ["img_004.png is missing", "frame 4"]),
    "mixed sizes": (lambda r: _resize(r, "img_006.png", (40, 30)),
                    ["img_006.png is 40x30", "48x32", "'w' x 'h'", "frame 6 (images/img_006.png)"]),
    "equirectangular": (lambda r: _edit(r, lambda m: m.update(camera_model="EQUIRECTANGULAR")),
                        ["(top level): 'camera_model'", "EQUIRECTANGULAR", "panoramic"]),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_bad_input_gives_one_line_through_train_py(tmp_path, breakage):
    root = tmp_path / "capture"
    capture = captures.write_capture(root, count=10, factors=())
    shutil.rmtree(root / "sparse")
    frames = [{"file_path": f"images/img_{n:03d}.png", "transform_matrix": pose.tolist()}
              for n, pose in enumerate(capture["poses"])]
    fx, fy, cx, cy = captures.CAMERAS["PINHOLE"]
    write_transforms(root, dict(fl_x=fx, fl_y=fy, cx=cx, cy=cy, w=captures.WIDTH, h=captures.HEIGHT), frames)
    damage, needles = BREAKAGES[breakage]
    damage(root)
    result = subprocess.run([sys.executable, "train.py", "--config=configs/demo360.py", "--config.dataset=transforms",
                             f"--config.data_dir={root}", f"--config.exp_dir={tmp_path / 'exp'}", "--config.factor=1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert_one_line_error(result, str(root), *needles)
    assert not (tmp_path / "exp").exists()


def test_a_folder_without_transforms_json_is_named(tmp_path):
    with pytest.raises(DatasetError, match="transforms.json is missing"):
        transforms.load_split(tmp_path, "train")
