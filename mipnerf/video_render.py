"""Videos behind render.py: a camera path around the scene rendered to colour and depth videos."""

import pathlib

import numpy as np

from mipnerf import camera, datasets, rendering, run_config, video
from mipnerf.config_checks import check_config
from mipnerf.errors import ConfigError



def _spiral(train: datasets.Split, config) -> np.ndarray:
    if config.forward_facing:  # LLFF's spiral in front of the cameras
        return camera.forward_facing_spiral(train.camtoworlds, train.bounds, config.render_frames)
    return camera.spiral_path(train.camtoworlds, config.render_frames)


# Camera paths `(training split, config) -> [F, 4, 4]`, keyed by the names config_checks.RENDER_PATHS accepts.
PATHS = {
    "spiral": _spiral,
    "orbit": lambda train, config: camera.orbit_path(train.camtoworlds, config.render_frames),
    "ellipse": lambda train, config: camera.ellipse_path(train.camtoworlds, config.render_frames),
    "zoom": lambda train, config: camera.zoom_path(train.camtoworlds, config.render_frames),
}


def zoom_offsets(train: datasets.Split, poses: np.ndarray, config):
    """[F] how much farther each zoom frame is from the scene centre than the first (which is at the
    training cameras' distance), so that its rays' near and far move back with it; None for other
    paths, and for forward-facing scenes, whose NDC rays always span the whole depth."""
    if config.render_path != "zoom" or config.forward_facing:
        return None
    distances = np.linalg.norm(poses[:, :3, 3] - camera.camera_orbit(train.camtoworlds).center, axis=-1)
    return distances - distances[0]


def render_video(config, log=print, explicit=None) -> list[pathlib.Path]:
    """Renders `config.render_path` around the training cameras with the newest whole checkpoint.

    The model and scene fields come from the run's config.json, as in `evaluation.evaluate`.

    The path has `render_frames` frames at the training resolution divided by `render_factor`.
    Writes `exp_dir/render/{path}_color.{mp4,gif}` and `{path}_depth.{mp4,gif}`; depth is
    colour-mapped between the near and far depths of the visible content over all frames.

    Returns:
      The four paths written: colour mp4, colour gif, depth mp4, depth gif.
    """
    config = run_config.for_restore(config, explicit)
    check_config(config)
    renderer = rendering.load_renderer(config, log=log)
    train = datasets.load_split(config, "train")
    height, width = train.height // config.render_factor, train.width // config.render_factor
    if min(height, width) < 1:
        raise ConfigError(f"config.render_factor={config.render_factor}: expected at most the image size "
                          f"({train.width}x{train.height} pixels)")
    poses = PATHS[config.render_path](train, config)
    # An ideal pinhole with the first training camera's focal length and principal point.
    cam = train.intrinsics.take(0).without_distortion().scaled(config.render_factor)
    images = list(rendering.render_views(renderer, poses, cam, height, width, config, desc=f"render {config.render_path}",
                                         depth_offsets=zoom_offsets(train, poses, config)))
    depth, acc = np.stack([im.depth for im in images]), np.stack([im.acc for im in images])
    color_frames = video.to_uint8(np.stack([im.rgb for im in images]))
    depth_frames = video.depth_image(depth, acc, disparity=config.ray_spacing == "disparity")
    out_dir = pathlib.Path(config.exp_dir) / "render"
    paths = (video.write_video(out_dir / f"{config.render_path}_color", color_frames, config.render_fps)
             + video.write_video(out_dir / f"{config.render_path}_depth", depth_frames, config.render_fps))
    log(f"step {renderer.step}: {len(poses)} frames of {width}x{height} at {config.render_fps} fps; "
        f"wrote {', '.join(str(p) for p in paths)}")
    return paths
