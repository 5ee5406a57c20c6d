"""Videos behind render.py: a camera path around the scene rendered to colour and depth videos."""

import pathlib

import numpy as np

from mipnerf import datasets
from mipnerf.cameras import camera, orbits, path_files
from mipnerf.commands import run_config
from mipnerf.commands.config_checks import check_config
from mipnerf.errors import ConfigError
from mipnerf.render import rendering, video


def _spiral(train: datasets.Split, config) -> np.ndarray:
    if config.forward_facing:  # LLFF's spiral in front of the cameras
        return orbits.forward_facing_spiral(train.camtoworlds, train.bounds, config.render_frames)
    return orbits.spiral_path(train.camtoworlds, config.render_frames)


# Camera paths `(training split, config) -> [F, 4, 4]`, keyed by the names config_checks.RENDER_PATHS accepts
# (and "file": a camera path file, `path_files`).
PATHS = {
    "spiral": _spiral,
    "orbit": lambda train, config: orbits.orbit_path(train.camtoworlds, config.render_frames),
    "ellipse": lambda train, config: orbits.ellipse_path(train.camtoworlds, config.render_frames),
    "zoom": lambda train, config: orbits.zoom_path(train.camtoworlds, config.render_frames),
}


def path_file(config) -> pathlib.Path:
    """The file `config.render_path_file` names: as given when absolute or found from the current
    directory, else under `config.exp_dir` (where the viewer saves, in camera_paths/)."""
    given = pathlib.Path(config.render_path_file).expanduser()
    candidates = [given] if given.is_absolute() else [given, pathlib.Path(config.exp_dir) / given]
    for path in candidates:
        if path.is_file():
            return path
    looked = f"neither {candidates[0]} nor {candidates[1]}" if len(candidates) == 2 else str(given)
    raise ConfigError(f"config.render_path_file={config.render_path_file!r}: no such file ({looked}); "
                      "expected a camera path JSON")


def file_views(path: pathlib.Path, config) -> tuple[np.ndarray, camera.Intrinsics, int, int, float]:
    """The frames of a camera path file at its size divided by `render_factor`.

    Returns:
      ([F, 4, 4] camera-to-world matrices, `Intrinsics` [F]: ideal pinholes with square pixels,
      the focal length from each frame's vertical field of view and the principal point at the
      centre, height, width, fps).
    """
    views = path_files.load(path)
    height, width = views.height // config.render_factor, views.width // config.render_factor
    if min(height, width) < 1:
        raise ConfigError(f"config.render_factor={config.render_factor}: expected at most the image size "
                          f"({views.width}x{views.height} pixels, in {path})")
    focal = camera.focal_from_fov(height, views.fovs)
    return views.camtoworlds, camera.Intrinsics.pinhole(focal, width, height, count=len(focal)), height, width, views.fps


def render_video(config, log=print, explicit=None) -> list[pathlib.Path]:
    """Renders `config.render_path` with the newest whole checkpoint.

    The model and scene fields come from the run's config.json, as in `evaluate.evaluate`.

    A built-in path goes around the training cameras: `render_frames` frames at the training
    resolution divided by `render_factor`, an ideal pinhole with the first training camera's
    focal length, at `render_fps`. With render_path "file", the frames, their fields of view, the
    size (divided by `render_factor`) and the fps are the camera path file's (`file_views`).

    Writes `exp_dir/render/{name}_color.{mp4,gif}` and `{name}_depth.{mp4,gif}`, the name being
    the path's or the file's stem; depth is colour-mapped between the near and far depths of the
    visible content over all frames.

    Returns:
      The four paths written: colour mp4, colour gif, depth mp4, depth gif.
    """
    config = run_config.for_restore(config, explicit)
    check_config(config, explicit or ())
    if config.render_path == "file":  # before the checkpoint, so that a bad file fails at once
        file = path_file(config)
        poses, cam, height, width, fps = file_views(file, config)
        name = file.stem
    renderer = rendering.load_renderer(config, log=log)
    train = datasets.load_split(config, "train", load_images=False)  # the cameras: no pixels decoded
    if config.render_path != "file":
        height, width = train.height // config.render_factor, train.width // config.render_factor
        if min(height, width) < 1:
            raise ConfigError(f"config.render_factor={config.render_factor}: expected at most the image size "
                              f"({train.width}x{train.height} pixels)")
        poses = PATHS[config.render_path](train, config)
        # An ideal pinhole with the first training camera's focal length and principal point.
        cam = train.intrinsics.take(0).without_distortion().scaled(config.render_factor)
        name, fps = config.render_path, config.render_fps
    offsets = rendering.depth_offsets(poses[:, :3, 3], orbits.camera_orbit(train.camtoworlds), config)
    images = list(rendering.render_views(renderer, poses, cam, height, width, config, desc=f"render {name}",
                                         offsets=offsets))
    depth, acc = np.stack([im.depth for im in images]), np.stack([im.acc for im in images])
    color_frames = video.to_uint8(np.stack([im.rgb for im in images]))
    depth_frames = video.depth_image(depth, acc, disparity=config.ray_spacing != "linear")
    out_dir = pathlib.Path(config.exp_dir) / "render"
    paths = (video.write_video(out_dir / f"{name}_color", color_frames, fps)
             + video.write_video(out_dir / f"{name}_depth", depth_frames, fps))
    log(f"step {renderer.step}: {len(poses)} frames of {width}x{height} at {fps:g} fps; "
        f"wrote {', '.join(str(p) for p in paths)}")
    return paths
