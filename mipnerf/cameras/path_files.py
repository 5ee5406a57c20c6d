"""Camera path files: keyframes placed by hand, the smooth path through them, and the JSON file
that holds both, in the format of nerfstudio's `camera_path.json` so that files go both ways.

The file:

    {"camera_type": "perspective", "render_width": W, "render_height": H, "fps": 30, "seconds": 4,
     "is_cycle": false,
     "camera_path": [{"camera_to_world": [16 floats], "fov": degrees, "aspect": W / H}, ...],
     "keyframes": [{"camera_to_world": [16 floats], "fov": degrees}, ...]}

`camera_to_world` is a 4x4 matrix in row-major order, in the package's convention (OpenGL /
Blender: the camera looks down -Z, +Y up), in the model's world frame; `fov` is the vertical
field of view in degrees. Rendering reads `camera_path`, never the keyframes: nerfstudio writes
its own keyframe dicts (a "matrix" field in its viewer's frame), which `load` leaves out.
"""

import json
import math
import pathlib
from typing import NamedTuple

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.spatial.transform import Rotation, RotationSpline

from mipnerf.cameras.conventions import check_rigid
from mipnerf.errors import ConfigError

CAMERA_TYPES = ("perspective",)  # nerfstudio's "fisheye" and "equirectangular" are not rendered


class Keyframe(NamedTuple):
    """A camera placed by hand: camtoworld [4, 4] (OpenGL convention, the model's world frame);
    fov: its vertical field of view in radians."""

    camtoworld: np.ndarray
    fov: float


class CameraPath(NamedTuple):
    """A camera path file as read by `load`.

    camtoworlds: [F, 4, 4] the frames' camera-to-world matrices; fovs: [F] vertical fields of view,
      radians. width, height: the frames' size in pixels. fps: frames per second.
    keyframes: the `Keyframe`s the path was made from; empty when the file has none of ours.
    """

    camtoworlds: np.ndarray
    fovs: np.ndarray
    width: int
    height: int
    fps: float
    keyframes: list


def interpolate(keyframes, seconds: float, fps: float, loop: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The smooth path through `keyframes`, evenly spaced in time.

    Positions and fields of view follow cubic splines through the keyframes, rotations a
    rotation spline (`scipy.spatial.transform.RotationSpline`), so each frame stays rigid. The
    first frame is the first keyframe; without `loop` the last frame is the last keyframe, with it
    the path closes back to the first keyframe (periodic splines) and the last frame is one step
    before it.

    Args:
      keyframes: a sequence of `Keyframe`.
      seconds, fps: the path lasts F = max(1, round(seconds * fps)) frames.

    Returns:
      ([F, 4, 4] camera-to-world matrices, [F] vertical fields of view in radians).
    """
    if not keyframes:
        raise ValueError("a camera path needs at least one keyframe")
    count = max(1, int(round(seconds * fps)))
    c2w = np.stack([np.asarray(k.camtoworld, np.float64)[:3, :4] for k in keyframes])
    fovs = np.array([float(k.fov) for k in keyframes])
    poses = np.broadcast_to(np.eye(4), (count, 4, 4)).copy()
    if len(keyframes) == 1:
        poses[:, :3, :4] = c2w[0]
        return poses, np.full(count, fovs[0])
    num = len(keyframes)
    rotations = Rotation.from_matrix(c2w[:, :3, :3])
    if loop:  # keyframe k at k / num; the path returns to keyframe 0 at 1
        times = np.arange(count) / count
        knots = np.arange(num + 1) / num
        values = np.concatenate([c2w[:, :3, 3], fovs[:, None]], axis=-1)
        spline = CubicSpline(knots, np.concatenate([values, values[:1]]), bc_type="periodic")
        # The rotation spline has no periodic ends: fitted over three turns, its middle one closes smoothly.
        turns = Rotation.concatenate([rotations] * 3)
        rotation_spline = RotationSpline(np.arange(-num, 2 * num) / num, turns)
    else:  # keyframe k at k / (num - 1)
        times = np.arange(count) / max(count - 1, 1)
        knots = np.arange(num) / (num - 1)
        spline = CubicSpline(knots, np.concatenate([c2w[:, :3, 3], fovs[:, None]], axis=-1))
        rotation_spline = RotationSpline(knots, rotations)
    values = spline(times)
    poses[:, :3, :3] = rotation_spline(times).as_matrix()
    poses[:, :3, 3] = values[:, :3]
    # A spline can overshoot between keyframes; a field of view stays inside (0, 180) degrees.
    return poses, np.clip(values[:, 3], 1e-3, np.pi - 1e-3)


def _matrix_list(c2w) -> list:
    full = np.eye(4)
    full[:3, :4] = np.asarray(c2w, np.float64)[:3, :4]
    return [float(x) for x in full.reshape(-1)]


def save(path, keyframes, seconds: float, fps: float, width: int, height: int, loop: bool = False) -> pathlib.Path:
    """Writes the path through `keyframes` (`interpolate`) and the keyframes to the JSON file `path`
    (creating its folder), `width` x `height` pixels at `fps`. Returns the path written."""
    poses, fovs = interpolate(keyframes, seconds, fps, loop)
    data = {
        "camera_type": "perspective",
        "render_width": int(width),
        "render_height": int(height),
        "fps": fps,
        "seconds": seconds,
        "is_cycle": bool(loop),
        "camera_path": [{"camera_to_world": _matrix_list(c2w), "fov": math.degrees(fov), "aspect": width / height}
                        for c2w, fov in zip(poses, fovs)],
        "keyframes": [{"camera_to_world": _matrix_list(k.camtoworld), "fov": math.degrees(k.fov)} for k in keyframes],
    }
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return path


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _camera(path, entry, where: str) -> tuple[np.ndarray, float]:
    """A frame's or keyframe's ([4, 4] camera-to-world, fov in radians); ConfigError naming `where`."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: {where} is {type(entry).__name__}; expected an object with camera_to_world and fov")
    matrix = entry.get("camera_to_world")
    if not (isinstance(matrix, list) and len(matrix) == 16 and all(_is_number(x) for x in matrix)):
        raise ConfigError(f"{path}: {where}.camera_to_world is {str(matrix)[:80]}; "
                          "expected 16 numbers, a row-major 4x4 matrix")
    c2w = check_rigid(np.array(matrix, np.float64).reshape(4, 4), f"{path}: {where}.camera_to_world",
                      "a rigid camera-to-world matrix in row-major order", ConfigError)
    fov = entry.get("fov")
    if not (_is_number(fov) and 0 < fov < 180):
        raise ConfigError(f"{path}: {where}.fov is {fov!r}; expected a vertical field of view in degrees in (0, 180)")
    return c2w, math.radians(fov)


def load(path) -> CameraPath:
    """Reads a camera path file, ours or nerfstudio's; the frames are `camera_path`'s, as written.

    Raises `ConfigError` in one line naming the file, the entry and the field at fault.
    """
    path = pathlib.Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; expected a camera path JSON") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path} cannot be read ({e}); expected a camera path JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object with camera_path, render_width, render_height and fps")
    camera_type = data.get("camera_type", "perspective")
    if camera_type not in CAMERA_TYPES:
        raise ConfigError(f"{path}: camera_type is {camera_type!r}; expected one of {CAMERA_TYPES}")
    size = {}
    for field in ("render_width", "render_height"):
        value = data.get(field)
        if not (_is_number(value) and value == int(value) and value >= 1):
            raise ConfigError(f"{path}: {field} is {value!r}; expected an integer >= 1 (pixels)")
        size[field] = int(value)
    fps = data.get("fps")
    if not (_is_number(fps) and fps > 0):
        raise ConfigError(f"{path}: fps is {fps!r}; expected frames per second > 0")
    frames = data.get("camera_path")
    if not (isinstance(frames, list) and frames):
        raise ConfigError(f"{path}: camera_path is {str(frames)[:80]}; expected a non-empty list of frames")
    cameras = [_camera(path, frame, f"camera_path[{i}]") for i, frame in enumerate(frames)]
    keyframes = data.get("keyframes")
    ours = isinstance(keyframes, list) and all(isinstance(k, dict) and "camera_to_world" in k for k in keyframes)
    keyframes = [Keyframe(*_camera(path, k, f"keyframes[{i}]")) for i, k in enumerate(keyframes)] if ours else []
    return CameraPath(camtoworlds=np.stack([c for c, _ in cameras]), fovs=np.array([f for _, f in cameras]),
                      width=size["render_width"], height=size["render_height"], fps=float(fps), keyframes=keyframes)
