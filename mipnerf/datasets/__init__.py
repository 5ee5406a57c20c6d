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
from typing import Callable, NamedTuple, Optional

from mipnerf.cameras import camera
from mipnerf.datasets import blender, colmap, transforms
from mipnerf.datasets.builtin import demo, demo360
from mipnerf.datasets.split import Split


def _multiscale():
    # Imported when needed, not with the package, so that `python -m mipnerf.datasets.multiscale`
    # (the converter) does not find its own module imported already.
    from mipnerf.datasets import multiscale

    return multiscale


class Format(NamedTuple):
    """What a value of `config.dataset` means: how its scenes load and what they hold.

    load: `(config, folder, split, share, load_images) -> [Split, ...]`, one per image scale.
    built_in: the function that returns the (cached) folder of the built-in scene in this format,
      used when `data_dir` is empty, or None (a folder must be given).
    folder: what a scene folder holds, for the message of a missing `data_dir`.
    splits_by_files: the scene's own files give its splits (else every `llffhold`-th image is a test image).
    capture: a real capture (a COLMAP layout or a transforms.json), not a synthetic Blender scene.
    colmap_model: its folder holds COLMAP's model, which the refined cameras are written as too.
    depth_bounds: its cameras come with depth bounds, which the forward-facing (NDC) frame needs.
    multiscale: its images come at several sizes, weighed by `multiscale_loss`.
    """

    load: Callable
    built_in: Optional[Callable[[], pathlib.Path]]
    folder: str
    splits_by_files: bool = False
    capture: bool = False
    colmap_model: bool = False
    depth_bounds: bool = False
    multiscale: bool = False


def _load_blender(config, folder, split, share, load_images):
    return [blender.load_split(folder, split, factor=config.factor, white_background=config.white_background,
                               share=share, load_images=load_images)]


def _load_colmap(config, folder, split, share, load_images):
    return [colmap.load_split(folder, split, factor=config.factor, llffhold=config.llffhold,
                              forward_facing=config.forward_facing, share=share, load_images=load_images)]


def _load_transforms(config, folder, split, share, load_images):
    return [transforms.load_split(folder, split, factor=config.factor, llffhold=config.llffhold,
                                  white_background=config.white_background, share=share, load_images=load_images)]


def _load_multiscale(config, folder, split, share, load_images):
    return _multiscale().load_scales(folder, split, config.white_background, share, load_images)


_BLENDER = "holding transforms_train.json"
_COLMAP = "holding images/ and sparse/0/ or poses_bounds.npy"
FORMATS = {
    "blender": Format(_load_blender, None, _BLENDER, splits_by_files=True),
    "demo": Format(_load_blender, demo.demo_scene_dir, _BLENDER, splits_by_files=True),
    "colmap": Format(_load_colmap, None, _COLMAP, capture=True, colmap_model=True, depth_bounds=True),
    "demo360": Format(_load_colmap, demo360.demo360_scene_dir, _COLMAP, capture=True, colmap_model=True,
                      depth_bounds=True),
    "transforms": Format(_load_transforms, lambda: demo360.demo360_scene_dir(transforms=True),
                         "holding transforms.json", capture=True),
    "multiscale": Format(_load_multiscale, lambda: _multiscale().demo_multiscale_dir(), _BLENDER,
                         splits_by_files=True, multiscale=True),
}


def scene_dir(config) -> pathlib.Path:
    """The folder of the config's scene: `data_dir`, or a built-in scene when it is empty."""
    built_in = FORMATS[config.dataset].built_in
    if built_in is not None and not config.data_dir:
        return built_in()
    return pathlib.Path(config.data_dir)


def load_scales(config, split: str, share: tuple[int, int] = (0, 1), load_images: bool = True) -> list:
    """Loads one split ("train", "val" or "test") of the config's scene as a list of `Split`s, one
    per image size: several for a multiscale scene (increasing `scale`), else one.

    share: (process_index, process_count); a process of a multi-host run loads only its block
    of the frames.
    load_images: False for the cameras alone (`images` None), as the full load gives them.
    """
    return FORMATS[config.dataset].load(config, scene_dir(config), split, share, load_images)


def load_split(config, split: str, share: tuple[int, int] = (0, 1), load_images: bool = True) -> Split:
    """Loads one split ("train", "val" or "test") of the config's scene at its `factor`; of a
    multiscale scene, its full-resolution images (see `load_scales` for all). Arguments as `load_scales`."""
    return load_scales(config, split, share, load_images)[0]


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
