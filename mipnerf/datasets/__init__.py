"""Dataset loaders, chosen by `config.dataset`:

- "blender": a nerf_synthetic folder (`blender`); "demo": the built-in scene in that format.
- "colmap": a capture posed by COLMAP, as the mip-NeRF 360 and LLFF releases (`colmap`);
  "demo360": the built-in unbounded scene in that layout.
- "transforms": a capture described by a transforms.json, nerfstudio's or Instant-NGP's
  (`transforms`); without a data_dir, the built-in unbounded scene written in that format too.
- "multiscale": mip-NeRF's multiscale Blender format (`multiscale`), images at several sizes;
  without a data_dir, the built-in demo scene converted to it.

Every loader returns `Split`s (one per image scale), so training, eval and render do not care
where a scene came from.
"""

import pathlib

from mipnerf import camera
from mipnerf.datasets import blender, colmap, demo, demo360, transforms
from mipnerf.datasets.split import Split


def _multiscale():
    # Imported when needed, not with the package, so that `python -m mipnerf.datasets.multiscale`
    # (the converter) does not find its own module imported already.
    from mipnerf.datasets import multiscale

    return multiscale


# The built-in scenes: dataset name -> the function that returns their (cached) folder.
BUILT_IN = {"demo": demo.demo_scene_dir, "demo360": demo360.demo360_scene_dir,
            "transforms": lambda: demo360.demo360_scene_dir(transforms=True),
            "multiscale": lambda: _multiscale().demo_multiscale_dir()}


def scene_dir(config) -> pathlib.Path:
    """The folder of the config's scene: `data_dir`, or a built-in scene when it is empty."""
    if config.dataset in BUILT_IN and not config.data_dir:
        return BUILT_IN[config.dataset]()
    return pathlib.Path(config.data_dir)


def is_capture(config) -> bool:
    """Whether the config's scene is a real capture (COLMAP layout or transforms.json) rather than a Blender scene."""
    return config.dataset in ("colmap", "demo360", "transforms")


def load_scales(config, split: str, share: tuple[int, int] = (0, 1), load_images: bool = True) -> list:
    """Loads one split ("train", "val" or "test") of the config's scene as a list of `Split`s, one
    per image size: several for a multiscale scene (increasing `scale`), else one.

    share: (process_index, process_count); a process of a multi-host run loads only its block
    of the frames.
    load_images: False for the cameras alone (`images` None), as the full load gives them.
    """
    if config.dataset == "multiscale":
        return _multiscale().load_scales(scene_dir(config), split, config.white_background, share, load_images)
    return [load_split(config, split, share, load_images)]


def load_split(config, split: str, share: tuple[int, int] = (0, 1), load_images: bool = True) -> Split:
    """Loads one split ("train", "val" or "test") of the config's scene at its `factor`; of a
    multiscale scene, its full-resolution images (see `load_scales` for all).

    share: (process_index, process_count); a process of a multi-host run loads only its block
    of the frames.
    load_images: False for the cameras alone (`images` None), as the full load gives them.
    """
    if config.dataset == "multiscale":
        return load_scales(config, split, share, load_images)[0]
    if config.dataset == "transforms":
        return transforms.load_split(scene_dir(config), split, factor=config.factor, llffhold=config.llffhold,
                                     white_background=config.white_background, share=share, load_images=load_images)
    if is_capture(config):
        return colmap.load_split(scene_dir(config), split, factor=config.factor, llffhold=config.llffhold,
                                 forward_facing=config.forward_facing, share=share, load_images=load_images)
    return blender.load_split(scene_dir(config), split, factor=config.factor,
                              white_background=config.white_background, share=share, load_images=load_images)


def split_cameras(data: Split, config) -> camera.Cameras:
    """The N cameras of a split (fields [N]) as rays are cast from them: between `config.near` and
    `config.far`, in NDC for forward-facing scenes (`config.forward_facing`, given to the casting)."""
    return camera.Cameras.of(data.camtoworlds, data.intrinsics, data.width, data.height, config.near, config.far)


def split_rays(data: Split, config) -> camera.Rays:
    """The cone-cast rays of every pixel of a split, cast on the host: fields [N, H, W, C].

    For tests and tools; training and rendering cast rays on the device (`camera.pixel_rays`).
    """
    return camera.generate_rays(data.camtoworlds, data.intrinsics, data.height, data.width, config.near, config.far,
                                ndc=config.forward_facing)
