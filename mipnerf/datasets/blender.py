"""Loader of the Blender (nerf_synthetic) format: `transforms_{split}.json` plus one PNG per frame.

The JSON holds `camera_angle_x` (horizontal field of view, radians) and a list of `frames`,
each with a `file_path` relative to the dataset folder (with or without the `.png` extension,
e.g. "./train/r_0") and a 4x4 camera-to-world `transform_matrix` in the Blender/OpenGL
convention. Images are read in the JSON's frame order. RGBA images are composited onto a white
(or black) background; downsampling averages the composited colour over square blocks.
"""

from pathlib import Path

import numpy as np

from mipnerf.cameras.camera import Intrinsics, focal_from_fov
from mipnerf.datasets.frames import check_factor, process_frames, read_json
from mipnerf.datasets.image_io import downsample, read_image, read_images
from mipnerf.datasets.split import Split
from mipnerf.errors import DatasetError

_EXPECTED_IMAGE = "a PNG named by the frame's 'file_path'"


def _read_transforms(data_dir: Path, split: str) -> tuple[dict, Path]:
    """Parses `transforms_{split}.json` and checks its top-level fields; returns it and its path."""
    meta, path = read_json(data_dir, f"transforms_{split}.json", f"the camera file of the '{split}' split")
    if not isinstance(meta, dict):
        raise DatasetError(
            f"{path} holds a JSON {type(meta).__name__}; expected an object with 'camera_angle_x' and 'frames'"
        )
    angle = meta.get("camera_angle_x")
    if isinstance(angle, bool) or not isinstance(angle, (int, float)) or not 0 < angle < np.pi:
        raise DatasetError(
            f"{path}: 'camera_angle_x' is {angle!r}; expected the horizontal field of view in radians, in (0, pi)"
        )
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise DatasetError(f"{path}: 'frames' is {_describe(frames)}; expected a non-empty list of frames")
    return meta, path


def _describe(value) -> str:
    """A short description of a JSON value for error messages."""
    if value is None:
        return "missing"
    if isinstance(value, list) and not value:
        return "an empty list"
    return f"a {type(value).__name__}"


def _parse_frame(data_dir: Path, json_path: Path, index: int, frame) -> tuple[Path, np.ndarray]:
    """The image path and [4, 4] float64 camera-to-world matrix of frame `index`."""
    where = f"{json_path}: frame {index}"
    if not isinstance(frame, dict):
        raise DatasetError(
            f"{where} is a {type(frame).__name__}; expected an object with 'file_path' and 'transform_matrix'"
        )
    file_path = frame.get("file_path")
    if not isinstance(file_path, str) or not file_path:
        raise DatasetError(
            f"{where}: 'file_path' is {_describe(file_path)}; expected the image path relative to {data_dir}"
        )
    try:
        matrix = np.asarray(frame.get("transform_matrix"), dtype=np.float64)
    except (TypeError, ValueError):
        matrix = None
    if matrix is None or matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise DatasetError(f"{where}: 'transform_matrix' is not a 4x4 matrix of finite numbers")
    path = data_dir / file_path
    if not path.is_file():
        path = data_dir / (file_path + ".png")
    return path, matrix


def load_split(data_dir, split: str, factor: int = 1, white_background: bool = True,
               share: tuple[int, int] = (0, 1), load_images: bool = True) -> Split:
    """Loads the images and cameras of one split of a nerf_synthetic scene.

    Args:
      data_dir: folder holding `transforms_{split}.json` and the images.
      split: "train", "val" or "test".
      factor: integer downsampling factor; every image side must be divisible by it.
      white_background: composite transparent pixels onto white (else black).
      share: (process_index, process_count): load only this process's contiguous block of the
        frames, for multi-host training. Every frame's entry is still checked.
      load_images: False for the cameras alone: `images` is None, only the first image is decoded (for
        the size), and the cameras are exactly those of the full load.

    Returns:
      A `Split` with N images of [H / factor, W / factor, 3] and their cameras.
    """
    check_factor(factor)
    data_dir = Path(data_dir)
    meta, json_path = _read_transforms(data_dir, split)
    frames = [_parse_frame(data_dir, json_path, k, frame) for k, frame in enumerate(meta["frames"])]
    if share[1] > 1:
        frames = [frames[k] for k in process_frames(len(frames), *share, json_path)]
    paths = [path for path, _ in frames]

    def read(path):
        image = read_image(path, white_background, _EXPECTED_IMAGE)
        return image.shape[:2], downsample(image, factor, path)

    images, (height, width) = read_images(paths, paths, read, load_images)
    focal = focal_from_fov(width, float(meta["camera_angle_x"]))
    return Split(
        images=images,
        camtoworlds=np.stack([matrix for _, matrix in frames]).astype(np.float32),
        intrinsics=Intrinsics.pinhole(focal, width, height, count=len(paths)),
        height=height,
        width=width,
        files=[str(p) for p in paths],
    )
