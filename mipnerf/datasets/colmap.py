"""Loader of real captures posed by COLMAP, in the layout of the mip-NeRF 360 and LLFF releases.

```
scene/
  images/            full-resolution photos (any names; sorted by name they give the split order)
  images_2/ ...      optional downsampled copies: images_N/ is used for factor N
  sparse/0/          COLMAP model: cameras, images, points3D as .bin (preferred) or .txt
  poses_bounds.npy   optional LLFF poses and per-image near/far bounds, [N, 17]
```

Poses come from the COLMAP model, or from `poses_bounds.npy` when there is none. Cameras are
converted to the Blender/OpenGL convention (-Z forward, +Y up) and moved into a canonical frame
(`scene_frame`). Images sorted by name are split as the published benchmarks do: every
`llffhold`-th (index 0, 8, 16, ...) is a test view, the rest train. There is no val split:
"val" gives the test views.
"""

import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mipnerf.cameras.camera import DISTORTION_COEFFICIENTS, Intrinsics
from mipnerf.cameras.conventions import colmap_to_camtoworld, quaternion_to_matrix
from mipnerf.datasets import colmap_model, scene_frame
from mipnerf.datasets.frames import check_factor, process_frames
from mipnerf.datasets.image_io import downsample, read_image, read_images
from mipnerf.datasets.split import Split
from mipnerf.errors import ConfigError, DatasetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_announced = set()  # (folder, factor) pairs already told that images/ is downsampled on load


class Frames(NamedTuple):
    """Every image of a capture, sorted by name, in the format's world frame.

    names: N image names; camtoworlds: [N, 4, 4] float64 (OpenGL convention);
    intrinsics: `Intrinsics` [N] at full resolution; sizes: [N, 2] full-resolution (width, height);
    bounds: [N, 2] near and far depths of the content each image sees.
    """

    names: list
    camtoworlds: np.ndarray
    intrinsics: Intrinsics
    sizes: np.ndarray
    bounds: np.ndarray


def camera_intrinsics(cam: colmap_model.Camera, where: str) -> tuple:
    """(fx, fy, cx, cy, [k1, k2, p1, p2, 0, 0] or [k1..k4, 0, 0], fisheye) of a COLMAP camera
    (`camera.Intrinsics` gives the order)."""
    p = list(cam.params)
    if cam.model == "SIMPLE_PINHOLE":
        return p[0], p[0], p[1], p[2], [0.0] * 6, False
    if cam.model == "PINHOLE":
        return p[0], p[1], p[2], p[3], [0.0] * 6, False
    if cam.model == "SIMPLE_RADIAL":
        return p[0], p[0], p[1], p[2], [p[3]] + [0.0] * 5, False
    if cam.model == "RADIAL":
        return p[0], p[0], p[1], p[2], [p[3], p[4]] + [0.0] * 4, False
    if cam.model in ("OPENCV", "OPENCV_FISHEYE"):
        return p[0], p[1], p[2], p[3], p[4:8] + [0.0, 0.0], cam.model == "OPENCV_FISHEYE"
    raise DatasetError(f"{where}: camera {cam.id} is a {cam.model} camera; expected one of "
                       f"{', '.join(colmap_model.CAMERA_MODELS)} (undistort the images with COLMAP otherwise)")


def _stack_intrinsics(values: list) -> Intrinsics:
    fx, fy, cx, cy, distortion, fisheye = zip(*values)
    return Intrinsics(np.array(fx), np.array(fy), np.array(cx), np.array(cy), np.array(distortion, np.float64),
                      np.array(fisheye, bool))


def _point_bounds(model: colmap_model.Model, images: list, where: Path) -> np.ndarray:
    """[N, 2] near and far: the 0.1 and 99.9 percentiles of the depths of each image's 3D points."""
    positions = dict(zip(model.points.ids.tolist(), range(len(model.points.ids))))
    bounds = np.full((len(images), 2), np.nan)
    for n, im in enumerate(images):
        rows = [positions[i] for i in im.point3d_ids.tolist() if i in positions]
        if rows:
            depths = model.points.xyz[rows] @ quaternion_to_matrix(im.qvec)[2] + im.tvec[2]
            depths = depths[depths > 0]
            if len(depths):
                bounds[n] = np.percentile(depths, [0.1, 99.9])
    seen = np.isfinite(bounds[:, 0])
    if not seen.any():
        raise DatasetError(f"{where}: no image sees a 3D point in front of it, so the scene's depth bounds are unknown; "
                           f"expected a model with 3D points, or a poses_bounds.npy beside sparse/")
    # An image that sees no point gets the widest bounds of the others.
    bounds[~seen] = [bounds[seen, 0].min(), bounds[seen, 1].max()]
    return bounds


def _read_poses_bounds(path: Path, count: int | None = None) -> np.ndarray:
    """`poses_bounds.npy` as [N, 17] float64, checked."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DatasetError(f"{path} cannot be read as a .npy array ({e}); expected an [N, 17] float array") from None
    if data.ndim != 2 or data.shape[1] != 17 or (count is not None and data.shape[0] != count):
        rows = "N" if count is None else str(count)
        raise DatasetError(f"{path} has shape {list(data.shape)}; expected [{rows}, 17]: per image a 3x5 pose "
                           f"matrix and the near and far bounds, in sorted image-name order")
    if not np.all(np.isfinite(data)):
        raise DatasetError(f"{path} holds non-finite values; expected finite poses and bounds")
    return data.astype(np.float64)


def _frames_from_colmap(data_dir: Path, sparse: Path) -> Frames:
    model = colmap_model.read_model(sparse)
    images = sorted(model.images.values(), key=lambda im: im.name)
    if not images:
        raise DatasetError(f"{sparse}: the model registers no images; expected at least 2")
    where = sparse / f"cameras{colmap_model.model_format(sparse)}"
    intrinsics = _stack_intrinsics([camera_intrinsics(model.cameras[im.camera_id], str(where)) for im in images])
    sizes = np.array([[model.cameras[im.camera_id].width, model.cameras[im.camera_id].height] for im in images])
    camtoworlds = np.stack([colmap_to_camtoworld(im.qvec, im.tvec) for im in images])
    poses_bounds = data_dir / "poses_bounds.npy"
    if poses_bounds.is_file():
        bounds = _read_poses_bounds(poses_bounds, len(images))[:, 15:17]
    else:
        bounds = _point_bounds(model, images, sparse)
    return Frames([im.name for im in images], camtoworlds, intrinsics, sizes, bounds)


def _image_names(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _frames_from_poses_bounds(data_dir: Path, path: Path, factor: int) -> Frames:
    """Frames from LLFF's poses_bounds.npy: rows in sorted image-name order, axis columns [down, right, back]."""
    folder = _image_folder(data_dir, factor)[0]
    if not folder.is_dir():
        raise DatasetError(f"{data_dir} has no images/ folder; expected the photos that {path.name} poses")
    names = _image_names(folder)
    data = _read_poses_bounds(path)
    if len(names) != len(data):
        raise DatasetError(f"{path} poses {len(data)} images but {folder} holds {len(names)}; "
                           f"expected one row per image, in sorted name order")
    poses = data[:, :15].reshape(-1, 3, 5)
    camtoworlds = np.tile(np.eye(4), (len(data), 1, 1))
    camtoworlds[:, :3, 0], camtoworlds[:, :3, 1], camtoworlds[:, :3, 2] = poses[:, :, 1], -poses[:, :, 0], poses[:, :, 2]
    camtoworlds[:, :3, 3] = poses[:, :, 3]
    height, width, focal = poses[:, 0, 4], poses[:, 1, 4], poses[:, 2, 4]
    intrinsics = Intrinsics(focal, focal.copy(), width / 2, height / 2, np.zeros((len(data), DISTORTION_COEFFICIENTS)),
                            np.zeros(len(data), bool))
    return Frames(names, camtoworlds, intrinsics, np.stack([width, height], -1), data[:, 15:17])


def read_frames(data_dir: Path, factor: int = 1) -> Frames:
    """Every image's camera in the world frame of the capture (COLMAP's, or poses_bounds.npy's)."""
    if not data_dir.is_dir():
        what = "is not a folder" if data_dir.exists() else "does not exist"
        raise DatasetError(f"dataset folder {data_dir} {what}; expected a capture folder holding sparse/0/ or poses_bounds.npy")
    sparse, poses_bounds = data_dir / "sparse" / "0", data_dir / "poses_bounds.npy"
    if sparse.is_dir():
        return _frames_from_colmap(data_dir, sparse)
    if poses_bounds.is_file():
        return _frames_from_poses_bounds(data_dir, poses_bounds, factor)
    raise DatasetError(f"{data_dir} has neither sparse/0/ (a COLMAP model) nor poses_bounds.npy; expected a capture "
                       f"laid out as the mip-NeRF 360 and LLFF releases are")


def _image_folder(data_dir: Path, factor: int) -> tuple[Path, int]:
    """The folder to read and the factor still to apply: images_N/ when it exists, else images/."""
    if factor > 1 and (data_dir / f"images_{factor}").is_dir():
        return data_dir / f"images_{factor}", 1
    return data_dir / "images", factor


def _image_paths(data_dir: Path, folder: Path, names: list) -> list:
    """The file of each image name in `folder`: by name, or, for an images_N/ folder whose files are
    renamed (as LLFF's are), by position in sorted order against images/."""
    if all((folder / name).is_file() for name in names):
        return [folder / name for name in names]
    originals = data_dir / "images"
    if folder != originals and originals.is_dir():
        listed, original = _image_names(folder), _image_names(originals)
        if len(listed) != len(original):
            raise DatasetError(f"{folder} holds {len(listed)} images but {originals} holds {len(original)}; expected "
                               f"one downsampled copy of every image")
        by_position = dict(zip(original, listed))
        if all(name in by_position for name in names):
            return [folder / by_position[name] for name in names]
    missing = next(name for name in names if not (folder / name).is_file())
    raise DatasetError(f"image file {folder / missing} is missing; expected every image the camera poses name")


def split_indices(count: int, split: str, llffhold: int, where) -> np.ndarray:
    """Indices of `split` among `count` images sorted by name: every `llffhold`-th is a test view."""
    index = np.arange(count)
    test = index % llffhold == 0 if llffhold > 0 else np.zeros(count, bool)
    train = index[~test]
    if len(train) < 2:
        raise DatasetError(f"{where}: {count} images leave {len(train)} training image(s) with llffhold={llffhold}; "
                           f"expected at least 2")
    if split == "train":
        return train
    if not test.any():
        raise ConfigError(f"config.llffhold={llffhold} puts every image of {where} in the training split; expected "
                          f"llffhold >= 1 for a test split (and validation views, which come from it)")
    return index[test]


def normalising_transform(frames: Frames, forward_facing: bool, where) -> np.ndarray:
    """The similarity from the capture's world frame to the model's (see `scene_frame`)."""
    if forward_facing:
        if not np.all(frames.bounds > 0):
            raise DatasetError(f"{where}: forward-facing scenes need positive near bounds; expected them in "
                               f"poses_bounds.npy or from the COLMAP points")
        return scene_frame.forward_facing_transform(frames.camtoworlds, frames.bounds)
    return scene_frame.pca_transform(frames.camtoworlds)


def _check_size(path: Path, image: np.ndarray, full_size, factor: int) -> None:
    """A photo must have its camera's size; a file of images_N/ that size over N, give or take the rounding."""
    width, height = np.asarray(full_size, np.float64) / factor
    slack = 1 if factor > 1 else 0
    if abs(image.shape[1] - width) > slack or abs(image.shape[0] - height) > slack:
        expected = f"{width:g}x{height:g}" if factor == 1 else f"about {width:g}x{height:g}, its camera's " \
            f"{int(full_size[0])}x{int(full_size[1])} over {factor}"
        raise DatasetError(f"image file {path} is {image.shape[1]}x{image.shape[0]} pixels; expected {expected}")


def load_split(data_dir, split: str, factor: int = 1, llffhold: int = 8, forward_facing: bool = False,
               share: tuple[int, int] = (0, 1), load_images: bool = True) -> Split:
    """Loads the images and cameras of one split of a capture.

    Args:
      data_dir: the capture's folder (see the module docstring).
      split: "train", or "test" (also given for "val").
      factor: integer downsampling: images_N/ when it exists, else images/ averaged over N x N blocks
        (the last rows and columns that N does not divide are dropped).
      llffhold: every llffhold-th image sorted by name is a test view; 0 puts all in train.
      forward_facing: normalise as LLFF scenes (else as 360 scenes).
      share: (process_index, process_count): load only this process's contiguous block.
      load_images: False for the cameras alone: `images` is None, only the first image is decoded (for
        the size), and the cameras are exactly those of the full load.

    Returns:
      A `Split` in the normalised frame, with `bounds` and `transform` set.
    """
    check_factor(factor)
    data_dir = Path(data_dir)
    frames = read_frames(data_dir, factor)
    transform = normalising_transform(frames, forward_facing, data_dir)
    index = split_indices(len(frames.names), "train" if split == "train" else "test", llffhold, data_dir)
    if share[1] > 1:
        index = index[process_frames(len(index), *share, data_dir)]
    folder, remaining = _image_folder(data_dir, factor)
    paths = _image_paths(data_dir, folder, [frames.names[i] for i in index])
    if remaining > 1 and (data_dir, factor) not in _announced:
        _announced.add((data_dir, factor))
        print(f"{data_dir} has no images_{factor}/: downsampling images/ by {factor}x{factor} area averaging",
              file=sys.stderr)

    def read(item):
        path, full_size = item
        image = read_image(path, expected="a photo of the capture")
        _check_size(path, image, full_size, factor // remaining)
        return image.shape[:2], downsample(image, remaining, path, crop=True)

    images, (height, width) = read_images(list(zip(paths, frames.sizes[index])), paths, read, load_images)
    scale = scene_frame.similarity_scale(transform)
    return Split(
        images=images,
        camtoworlds=scene_frame.transform_poses(transform, frames.camtoworlds[index]).astype(np.float32),
        intrinsics=frames.intrinsics.take(index).scaled(factor),
        height=height,
        width=width,
        files=[str(p) for p in paths],
        bounds=(frames.bounds[index] * scale).astype(np.float32),
        transform=transform,
    )
