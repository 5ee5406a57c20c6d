"""Loader of captures described by one `transforms.json`, in the nerfstudio and Instant-NGP dialects:
what ns-process-data writes for photos and videos, what Polycam, Record3D and the iPhone capture
apps export for nerfstudio, what Instant-NGP's colmap2nerf.py writes.

```
scene/
  transforms.json        the cameras and the frames (below)
  images/ ...            the images the frames' file_path name
  images_2/ images_4/    optional downsampled copies (nerfstudio's): images_N/<file name> for factor N
  masks/ masks_2/ ...    optional masks the frames' mask_path name, and their downsampled copies
```

Camera fields, at the top level or in a frame (a frame's value wins):
- `fl_x`, `fl_y`: focal lengths in pixels; or `camera_angle_x`, `camera_angle_y`: fields of view
  in radians (focal 0.5 w / tan(angle / 2)); a missing y is x's (square pixels).
- `cx`, `cy`: the principal point (default: the image centre); `w`, `h`: the image size in pixels
  (default: the image file's).
- `camera_model`: a perspective model (OPENCV, PINHOLE, SIMPLE_PINHOLE, SIMPLE_RADIAL, RADIAL),
  with `k1 k2 k3 k4 p1 p2` (radial terms up to r^8, tangential p1 p2; missing ones 0), or
  OPENCV_FISHEYE (equidistant, `k1..k4`); Instant-NGP's `is_fisheye: true` means the latter.
  Distortion is undone per ray (`camera.undistort`). EQUIRECTANGULAR and the other panoramic
  models are refused.

Frames: `file_path` relative to the folder of transforms.json (".png" added when the file
without it is missing), `transform_matrix` a rigid 4x4 camera-to-world matrix in the OpenGL
convention (-Z forward, +Y up), and an optional `mask_path` (a single-channel image, 0 where a
pixel is masked out: it is never trained on nor scored). Every image must have one size.

nerfstudio's `applied_transform` (3x4) records the transform from the frame the poses were
made in (COLMAP's, for ns-process-data) to the file's, already applied to the matrices: it is
not applied again. The model's frame is normalised as the COLMAP loader's is (`scene_frame`),
computed in that original frame, so that a capture gives one model frame whether read from its
COLMAP model or from its transforms.json. Instant-NGP's `aabb_scale`, `scale`, `offset` and
`sharpness`, and nerfstudio's depth and point-cloud files, are not read.

Frames sorted by file path are split as the COLMAP loader splits images: every `llffhold`-th
(index 0, 8, 16, ...) is a test view, the rest train; "val" gives the test views.
"""

import json
import math
import sys
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from mipnerf.cameras.camera import Intrinsics
from mipnerf.cameras.conventions import check_rigid
from mipnerf.datasets import scene_frame
from mipnerf.datasets.colmap import split_indices
from mipnerf.datasets.frames import check_factor, process_frames, read_json
from mipnerf.datasets.image_io import downsample, downsample_mask, image_size, read_image, read_images
from mipnerf.datasets.split import Split
from mipnerf.errors import DatasetError

FILE = "transforms.json"
PERSPECTIVE = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL")
FISHEYE = "OPENCV_FISHEYE"
PANORAMIC = ("EQUIRECTANGULAR", "OMNIDIRECTIONALSTEREO_L", "OMNIDIRECTIONALSTEREO_R", "VR180_L", "VR180_R")
_announced = set()  # (folder, factor) pairs already told that their images are downsampled on load


class Frames(NamedTuple):
    """Every frame of a transforms.json, sorted by file path, in the file's world frame.

    names: N descriptions of the frames for messages ("PATH: frame K (FILE_PATH)");
    paths: N full-resolution image files; camtoworlds: [N, 4, 4] float64 (OpenGL convention);
    intrinsics: `Intrinsics` [N] at full resolution; size: (width, height) of every image;
    mask_paths: N mask files or None; applied: [4, 4] nerfstudio's applied_transform, or None.
    """

    names: list
    paths: list
    camtoworlds: np.ndarray
    intrinsics: Intrinsics
    size: tuple
    mask_paths: list
    applied: Optional[np.ndarray]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Fields:
    """The camera fields of one frame: its own, else the top level's; errors name where a value came from."""

    def __init__(self, meta: dict, frame: dict, where: str, path: Path):
        self.meta, self.frame, self.where, self.path = meta, frame, where, path

    def origin(self, key: str) -> str:
        return self.where if key in self.frame else f"{self.path} (top level)"

    def get(self, key: str, default=None):
        return self.frame.get(key, self.meta.get(key, default))

    def number(self, key: str, expected: str, valid=lambda v: True) -> Optional[float]:
        """The field as a float, None when absent; a DatasetError when it is not a number satisfying `valid`."""
        value = self.get(key)
        if value is None:
            return None
        if not _is_number(value) or not valid(value):
            raise DatasetError(f"{self.origin(key)}: '{key}' is {json.dumps(value)[:60]}; expected {expected}")
        return float(value)


def _camera(fields: _Fields, image: Path) -> tuple:
    """((width, height), (fx, fy, cx, cy, distortion [6], fisheye)) of one frame at full resolution."""
    size = [fields.number(k, "an integer >= 1, the image's width and height in pixels",
                          lambda v: v >= 1 and v == int(v)) for k in ("w", "h")]
    if None in size:
        size = image_size(image, "an image named by its frame's 'file_path'")
    width, height = (int(v) for v in size)

    def focal(key: str, angle_key: str, side: int) -> Optional[float]:
        value = fields.number(key, "a number > 0, the focal length in pixels", lambda v: v > 0)
        angle = fields.number(angle_key, "a number in (0, pi), the field of view in radians", lambda v: 0 < v < math.pi)
        return value if value is not None or angle is None else 0.5 * side / math.tan(0.5 * angle)

    fx, fy = focal("fl_x", "camera_angle_x", width), focal("fl_y", "camera_angle_y", height)
    if fx is None and fy is None:
        raise DatasetError(f"{fields.where} has no 'fl_x' or 'camera_angle_x', in the frame or at the top level; "
                           f"expected the focal length in pixels or the horizontal field of view in radians")
    fx, fy = (fx or fy), (fy or fx)
    cx = fields.number("cx", "a number, the principal point's column in pixels")
    cy = fields.number("cy", "a number, the principal point's row in pixels")
    k1, k2, k3, k4, p1, p2 = (fields.number(k, "a number, a distortion coefficient") or 0.0
                              for k in ("k1", "k2", "k3", "k4", "p1", "p2"))
    fisheye = fields.get("is_fisheye", False)
    if not isinstance(fisheye, bool):
        raise DatasetError(f"{fields.origin('is_fisheye')}: 'is_fisheye' is {json.dumps(fisheye)[:60]}; "
                           f"expected true or false")
    model = fields.get("camera_model", FISHEYE if fisheye else "OPENCV")
    if model not in PERSPECTIVE + (FISHEYE,):
        kind = "a panoramic camera, whose rays this package does not cast" if model in PANORAMIC else "unknown here"
        raise DatasetError(f"{fields.origin('camera_model')}: 'camera_model' is {json.dumps(model)[:60]}, {kind}; "
                           f"expected one of {', '.join(PERSPECTIVE + (FISHEYE,))}")
    fisheye = model == FISHEYE
    distortion = [k1, k2, k3, k4, 0.0, 0.0] if fisheye else [k1, k2, p1, p2, k3, k4]
    centre = (0.5 * width if cx is None else cx, 0.5 * height if cy is None else cy)
    return (width, height), (fx, fy, *centre, distortion, fisheye)


def _matrix(fields: _Fields) -> np.ndarray:
    """A frame's [4, 4] camera-to-world matrix, checked: 4x4 finite numbers, a rotation, last row (0, 0, 0, 1)."""
    value = fields.frame.get("transform_matrix")
    try:
        matrix = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        matrix = None
    if matrix is None or matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise DatasetError(f"{fields.where}: 'transform_matrix' is {json.dumps(value)[:60]}; expected a 4x4 "
                           f"camera-to-world matrix of numbers")
    return check_rigid(matrix, f"{fields.where}: 'transform_matrix'", "a rigid camera-to-world matrix", DatasetError)


def _applied_transform(meta: dict, path: Path) -> Optional[np.ndarray]:
    """nerfstudio's `applied_transform` as a rigid [4, 4], or None."""
    value = meta.get("applied_transform")
    if value is None:
        return None
    try:
        matrix = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        matrix = None
    if matrix is None or matrix.shape not in ((3, 4), (4, 4)) or not np.all(np.isfinite(matrix)):
        raise DatasetError(f"{path}: 'applied_transform' is {json.dumps(value)[:60]}; expected a 3x4 matrix of numbers")
    matrix = np.concatenate([matrix[:3], [[0.0, 0.0, 0.0, 1.0]]])
    return check_rigid(matrix, f"{path}: 'applied_transform'", "a rigid transform", DatasetError)


def _frame_file(data_dir: Path, value, where: str, key: str) -> Path:
    """The file a frame's `key` names, relative to `data_dir` (for images, with ".png" added where the file
    without it is missing, as in the Blender format)."""
    if not isinstance(value, str) or not value:
        raise DatasetError(f"{where}: '{key}' is {json.dumps(value)[:60]}; expected a path relative to {data_dir}")
    path = data_dir / value
    if key == "file_path" and not path.is_file() and (data_dir / (value + ".png")).is_file():
        return data_dir / (value + ".png")
    return path


class _Entry(NamedTuple):
    """One frame as read: its description, image file, [4, 4] matrix, (width, height), camera tuple, mask file."""

    name: str
    path: Path
    matrix: np.ndarray
    size: tuple
    camera: tuple
    mask: Optional[Path]


def read_frames(data_dir: Path) -> Frames:
    """Every frame of `data_dir/transforms.json`, checked, sorted by file path."""
    meta, path = read_json(data_dir, FILE, "a transforms.json holding the capture's cameras and frames")
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not isinstance(frames, list) or not frames:
        raise DatasetError(f"{path} has no list of 'frames'; expected an object with a non-empty 'frames' list, each "
                           f"frame with 'file_path' and 'transform_matrix'")
    entries = []
    for k, frame in enumerate(frames):
        where = f"{path}: frame {k}"
        if not isinstance(frame, dict):
            raise DatasetError(f"{where} is a {type(frame).__name__}; expected an object with 'file_path' and "
                               f"'transform_matrix'")
        image = _frame_file(data_dir, frame.get("file_path"), where, "file_path")
        fields = _Fields(meta, frame, f"{where} ({frame['file_path']})", path)
        mask = None if frame.get("mask_path") is None else _frame_file(data_dir, frame["mask_path"], where, "mask_path")
        entries.append(_Entry(fields.where, image, _matrix(fields), *_camera(fields, image), mask))
    entries.sort(key=lambda entry: str(entry.path))
    first = entries[0]
    other = next((entry for entry in entries if entry.size != first.size), None)
    if other is not None:
        raise DatasetError(f"{other.name} is {other.size[0]}x{other.size[1]} pixels but {first.name} is "
                           f"{first.size[0]}x{first.size[1]}; expected one image size for every frame")
    fx, fy, cx, cy, distortion, fisheye = zip(*(entry.camera for entry in entries))
    intrinsics = Intrinsics(np.array(fx), np.array(fy), np.array(cx), np.array(cy), np.array(distortion, np.float64),
                            np.array(fisheye, bool))
    return Frames([e.name for e in entries], [e.path for e in entries], np.stack([e.matrix for e in entries]),
                  intrinsics, first.size, [e.mask for e in entries], _applied_transform(meta, path))


def normalising_transform(frames: Frames) -> np.ndarray:
    """The similarity from the file's world frame to the model's: the 360 frame (`scene_frame.pca_transform`)
    of the cameras in the frame before nerfstudio's applied_transform."""
    if frames.applied is None:
        return scene_frame.pca_transform(frames.camtoworlds)
    original = np.linalg.inv(frames.applied)
    return scene_frame.pca_transform(scene_frame.transform_poses(original, frames.camtoworlds)) @ original


def _scaled_file(data_dir: Path, path: Path, folder: str, factor: int) -> tuple[Path, int]:
    """The file to read for factor N and the factor still to apply: `folder_N/<name>` when that folder
    exists (nerfstudio's downsampled copies), else the full-resolution file."""
    scaled = data_dir / f"{folder}_{factor}"
    if factor > 1 and scaled.is_dir():
        return scaled / path.name, 1
    return path, factor


def _check_size(path: Path, shape, size, factor: int, frame: str) -> None:
    """An image (or mask) must have its frame's size, over `factor` for a downsampled copy (give or take the rounding)."""
    width, height = np.asarray(size, np.float64) / factor
    slack = 1 if factor > 1 else 0
    if abs(shape[1] - width) > slack or abs(shape[0] - height) > slack:
        expected = f"{width:g}x{height:g}" if factor == 1 else f"about {width:g}x{height:g}, {size[0]}x{size[1]} over {factor}"
        raise DatasetError(f"{path} is {shape[1]}x{shape[0]} pixels; expected {expected}, the 'w' x 'h' of {frame} "
                           f"(every frame has one size)")


def load_split(data_dir, split: str, factor: int = 1, llffhold: int = 8, white_background: bool = True,
               share: tuple[int, int] = (0, 1), load_images: bool = True) -> Split:
    """Loads the images, masks and cameras of one split of a transforms.json capture.

    Args:
      data_dir: the folder holding transforms.json (see the module docstring).
      split: "train", or "test" (also given for "val").
      factor: integer downsampling: images_N/ (and masks_N/) when it exists, else the full-resolution
        files averaged over N x N blocks (the last rows and columns that N does not divide are
        dropped); a downsampled mask keeps a pixel only where its whole block was kept.
      llffhold: every llffhold-th frame sorted by file path is a test view; 0 puts all in train.
      white_background: composite transparent pixels onto white (else black).
      share: (process_index, process_count): load only this process's contiguous block.
      load_images: False for the cameras alone: `images` and `masks` are None, only the first image is decoded (for
        the size), and the cameras are exactly those of the full load.

    Returns:
      A `Split` in the normalised frame, with `transform` (the file's world to the model's),
      `applied_transform` (nerfstudio's, or None) and `masks` (None when no frame has one).
    """
    check_factor(factor)
    data_dir = Path(data_dir)
    frames = read_frames(data_dir)
    json_path = data_dir / FILE
    transform = normalising_transform(frames)
    index = split_indices(len(frames.paths), "train" if split == "train" else "test", llffhold, json_path)
    if share[1] > 1:
        index = index[process_frames(len(index), *share, json_path)]
    files = [(*_scaled_file(data_dir, frames.paths[i], "images", factor), frames.names[i]) for i in index]
    if any(remaining > 1 for _, remaining, _ in files) and (data_dir, factor) not in _announced:
        _announced.add((data_dir, factor))
        print(f"{data_dir} has no images_{factor}/: downsampling its images by {factor}x{factor} area averaging",
              file=sys.stderr)

    def read(item):
        path, remaining, frame = item
        image = read_image(path, white_background, f"the image of {frame}")
        _check_size(path, image.shape, frames.size, factor // remaining, frame)
        return image.shape[:2], downsample(image, remaining, path, crop=True)

    images, (height, width) = read_images(files, [path for path, _, _ in files], read, load_images)
    masks = None
    if load_images and any(frames.mask_paths[i] is not None for i in index):
        masks = np.stack([_read_mask(data_dir, frames, i, factor, (height, width)) for i in index])
    return Split(
        images=images,
        camtoworlds=scene_frame.transform_poses(transform, frames.camtoworlds[index]).astype(np.float32),
        intrinsics=frames.intrinsics.take(index).scaled(factor),
        height=height,
        width=width,
        files=[str(path) for path, _, _ in files],
        transform=transform,
        masks=masks,
        applied_transform=frames.applied,
    )


def _read_mask(data_dir: Path, frames: Frames, i: int, factor: int, shape) -> np.ndarray:
    """Frame i's [H, W] mask at `factor` (True where kept): all True for a frame without one."""
    if frames.mask_paths[i] is None:
        return np.ones(shape, bool)
    path, remaining = _scaled_file(data_dir, frames.mask_paths[i], "masks", factor)
    mask = read_image(path, False, f"the mask of {frames.names[i]}, 0 where masked out").max(axis=-1) > 0
    _check_size(path, mask.shape, frames.size, factor // remaining, frames.names[i])
    mask = downsample_mask(mask, remaining)
    if mask.shape != tuple(shape):
        raise DatasetError(f"mask file {path} of {frames.names[i]} is {mask.shape[1]}x{mask.shape[0]} pixels at "
                           f"factor {factor} but its image is {shape[1]}x{shape[0]}; expected its image's size")
    if not mask.any():
        raise DatasetError(f"mask file {path} of {frames.names[i]} masks out every pixel (at factor {factor}); "
                           f"expected some pixels kept (nonzero)")
    return mask
