"""Dataset loaders: the Blender (nerf_synthetic) format and the built-in demo scene."""

import pathlib

from mipnerf import camera
from mipnerf.datasets import blender, demo


def scene_dir(config) -> pathlib.Path:
    """The folder of the config's scene: `data_dir`, or the built-in demo scene when it is empty."""
    if config.dataset == "demo" and not config.data_dir:
        return demo.demo_scene_dir()
    return pathlib.Path(config.data_dir)


def load_split(config, split: str, share: tuple[int, int] = (0, 1)) -> blender.Split:
    """Loads one split ("train", "val" or "test") of the config's scene at its `factor`.

    share: (process_index, process_count); a process of a multi-host run loads only its block
    of the frames.
    """
    return blender.load_split(scene_dir(config), split, factor=config.factor,
                              white_background=config.white_background, share=share)


def split_rays(data: blender.Split, config) -> camera.Rays:
    """The cone-cast rays of every pixel of a split: fields [N, H, W, C]."""
    return camera.generate_rays(data.camtoworlds, data.height, data.width, data.focal, config.near, config.far)
