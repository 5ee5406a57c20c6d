"""The refined training cameras out of a run (`config.pose_refine`), for other tools.

`exp_dir/refined_cameras.json`: per training image, its file, its refined camera-to-world
matrix (OpenGL convention) in the model's frame and in the capture's own world frame (undoing
the loader's normalisation, `transform.json`'s world_to_model), and the correction itself.

`exp_dir/refined_sparse/`: for a capture posed by COLMAP (sparse/0/), its model as text
(cameras.txt, images.txt, points3D.txt) with the training images' poses refined, in COLMAP's
world frame, with the original image and camera ids, names and 2D points; cameras (focal
lengths, distortion), 3D points and the test images' poses are as COLMAP gave them.
"""

import json
import pathlib
from typing import NamedTuple, Optional

import numpy as np

from mipnerf import datasets
from mipnerf.cameras import pose_refine
from mipnerf.cameras.conventions import camtoworld_to_colmap
from mipnerf.datasets import colmap, colmap_model, scene_frame

CAMERAS_FILE = "refined_cameras.json"
SPARSE_DIR = "refined_sparse"


class TrainCameras(NamedTuple):
    """The training cameras as loaded: files [N]; camtoworlds [N, 3 or 4, 4] in the model's frame;
    transform [4, 4] from the capture's world frame to the model's, or None where they are the same."""

    files: list
    camtoworlds: np.ndarray
    transform: Optional[np.ndarray]


def train_cameras(splits: list) -> TrainCameras:
    """The `TrainCameras` of the training splits (one per scale), in the order of `TrainImages.ids`."""
    return TrainCameras([f for s in splits for f in s.files], np.concatenate([s.camtoworlds for s in splits]),
                        splits[0].transform)


def to_capture(camtoworlds: np.ndarray, transform: Optional[np.ndarray]) -> np.ndarray:
    """[N, 4, 4] cameras of the model's frame in the capture's world frame (undoing `transform`)."""
    return camtoworlds if transform is None else scene_frame.transform_poses(np.linalg.inv(transform), camtoworlds)


def export(exp_dir, config, cameras: TrainCameras, poses: np.ndarray) -> None:
    """Writes `refined_cameras.json` and, for a COLMAP capture, `refined_sparse/` (see the module docstring).

    Args:
      cameras: the training cameras as loaded; poses: [N, 6] their corrections (`pose_refine`).
    """
    exp_dir = pathlib.Path(exp_dir)
    poses = np.asarray(poses, np.float64)
    refined = pose_refine.apply_numpy(poses, cameras.camtoworlds)
    in_capture = to_capture(refined, cameras.transform)
    angles = pose_refine.angles_deg(poses)
    frames = [{"file": pathlib.Path(f).name, "path": str(f), "camtoworld_model": refined[n].tolist(),
               "camtoworld_capture": in_capture[n].tolist(), "rotation_deg": float(angles[n]),
               "rotation_axis_angle": poses[n, :3].tolist(), "translation": poses[n, 3:].tolist()}
              for n, f in enumerate(cameras.files)]
    record = {"about": "refined training cameras: camera-to-world matrices (OpenGL: +X right, +Y up, looking down "
                       "-Z) in the model's frame and in the capture's world frame (transform.json undone); the "
                       "correction is an axis-angle rotation (radians) and a translation (model units), both in "
                       "the camera's frame: camtoworld_model = loaded @ [[R, t], [0, 1]]. Focal lengths and "
                       "distortion are not refined.",
              "frames": frames}
    (exp_dir / CAMERAS_FILE).write_text(json.dumps(record, indent=1))
    if datasets.FORMATS[config.dataset].colmap_model:
        sparse = datasets.scene_dir(config) / "sparse" / "0"
        if colmap_model.model_format(sparse) is not None:
            write_colmap(sparse, exp_dir / SPARSE_DIR, config, in_capture)


def write_colmap(sparse: pathlib.Path, out: pathlib.Path, config, in_capture: np.ndarray) -> None:
    """Writes the COLMAP model of `sparse` as text into `out`, the training images' poses set to
    `in_capture` [N, 4, 4] (capture frame; the training images in the loader's order)."""
    model = colmap_model.read_model(sparse)
    by_name = {im.name: im for im in model.images.values()}
    names = sorted(by_name)  # the loader's order: sorted by name, then its split
    train = [names[i] for i in colmap.split_indices(len(names), "train", config.llffhold, sparse)]
    if len(train) != len(in_capture):
        return  # a multi-host share or another split: nothing that can be matched by order
    images = dict(model.images)
    for name, c2w in zip(train, in_capture):
        im = by_name[name]
        qvec, tvec = camtoworld_to_colmap(c2w)
        images[im.id] = im._replace(qvec=qvec, tvec=tvec)
    colmap_model.write_model(model._replace(images=images), out, binary=False)
