"""Rendering whole images in fixed-size chunks of pixels with one jitted, deterministic function
that casts each chunk's rays on the device, so no view's rays are ever built whole.

Shared by training's validation views, eval.py and render.py. Every chunk has the same shape
(the last is padded), so the render function compiles once per lens kind.
"""

import contextlib
from typing import Any, Callable, Iterator, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from mipnerf.cameras import camera, orbits
from mipnerf.model import mipnerf360
from mipnerf.store.checkpoints import Checkpointer, checkpoint_dir
from mipnerf.training import distributed


class Image(NamedTuple):
    """A rendered view: rgb [H, W, 3], depth [H, W], acc [H, W] (opacity), float32 numpy arrays."""

    rgb: np.ndarray
    depth: np.ndarray
    acc: np.ndarray


def make_render_fn(config, model):
    """A jitted `(params, cameras, pixels [B], lens) -> Composite` with deterministic sampling: the
    rays through `pixels` (row-major indices into the image) of one camera (`camera.Cameras` with
    scalar fields), cast on the device; `lens` (a `camera.Lens`) is static."""
    background = mipnerf360.background_color(config)

    def render_pixels(params, cameras: camera.Cameras, pixels, lens: camera.Lens):
        rays = camera.pixel_rays(cameras, pixels, lens, config.forward_facing)
        out, _ = model.apply(params, None, rays, 1.0, background)
        return out

    return jax.jit(render_pixels, static_argnames="lens")


def image_chunks(render_fn, params, cameras: camera.Cameras, lens: camera.Lens, chunk: int, mesh: Mesh) -> Iterator:
    """Dispatches one view's chunks of pixels in turn, yielding each chunk's (device) `Composite`.

    A caller that stops iterating abandons the rest of the view between chunks (the viewer does,
    when its camera moves). Arguments as for `render_image`; `join_chunks` makes the image.
    """
    height, width = int(cameras.height), int(cameras.width)
    chunk = -(-chunk // mesh.size) * mesh.size
    num = height * width
    sharding = NamedSharding(mesh, P("data"))
    cameras = jax.device_put(jax.tree.map(np.asarray, cameras), NamedSharding(mesh, P()))
    for i in range(0, num, chunk):  # the last chunk repeats the last pixel
        pixels = np.minimum(np.arange(i, i + chunk), num - 1).astype(np.int32)
        yield render_fn(params, cameras, jax.device_put(pixels, sharding), lens)


def concat_chunks(outs, num: int):
    """All chunks' outputs (`image_chunks`, any pytree of [chunk, ...] arrays) read back to the host
    and joined leaf by leaf into [num, ...], the last chunk's padding dropped."""
    return jax.tree.map(lambda *leaves: np.concatenate(leaves)[:num], *jax.device_get(list(outs)))


def join_chunks(outs, height: int, width: int) -> Image:
    """The `Image` of a view from all its chunks' outputs (`image_chunks`), read back to the host."""
    out = concat_chunks(outs, height * width)
    return Image(rgb=out.rgb.reshape(height, width, 3), depth=out.depth.reshape(height, width),
                 acc=out.acc.reshape(height, width))


def render_image(render_fn, params, cameras: camera.Cameras, lens: camera.Lens, chunk: int, mesh: Mesh) -> Image:
    """Renders one view.

    Args:
      render_fn: from `make_render_fn`.
      cameras: one camera (`camera.Cameras` with scalar fields, numpy), giving the image size.
      lens: its `camera.Lens`.
      chunk: pixels per call; rounded up to a multiple of the device count.
      mesh: the device mesh; each chunk is sharded over its "data" axis.
    """
    # Every chunk is dispatched before any is read back, so the device never waits on the host.
    outs = list(image_chunks(render_fn, params, cameras, lens, chunk, mesh))
    return join_chunks(outs, int(cameras.height), int(cameras.width))


class Renderer(NamedTuple):
    """A trained model ready to render views.

    render_fn: from `make_render_fn`. params: its parameters. step: the training step they are
    from. mesh: the device mesh that chunks of rays are sharded over. model: the module.
    """

    render_fn: Callable
    params: Any
    step: int
    mesh: Mesh
    model: Any = None


def saved_num_images(config, ckpt: Checkpointer, step: Optional[int] = None) -> int:
    """The number of training images the per-image tables of checkpoint `step` (default: the newest)
    hold, or 0 when the config's model has none (no appearance)."""
    if not (config.appearance_dim or config.appearance_affine):
        return 0
    name = "appearance" if config.appearance_dim else "color_transform"
    return ckpt.saved_shape(("params", "params", name), step)[0]


def load_renderer(config, log=print) -> Renderer:
    """Builds the config's model with the parameters of checkpoint `config.eval_step` (0: the newest
    whole one) of the run in `config.exp_dir`, for every command that renders a trained run (eval,
    render, view, export); raises `CheckpointError` naming the folder when there is none.

    Reads the step and the parameters (with the per-image tables) alone: no optimizer is built
    and its state is never read, so any run renders whatever its optimizer was. Damaged newer
    checkpoints are moved aside with a line to `log` (see `Checkpointer.restore`).
    """
    mesh = distributed.make_mesh()
    step = config.eval_step or None
    with contextlib.closing(Checkpointer(checkpoint_dir(config.exp_dir), create=False)) as ckpt:
        model = mipnerf360.build_model(config, saved_num_images(config, ckpt, step))
        key = jax.random.PRNGKey(0)
        shapes = jax.eval_shape(model.init, key, *mipnerf360.init_args(config, key))
        replicated = NamedSharding(mesh, P())
        target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
                              {"step": jax.ShapeDtypeStruct((), jnp.int32), "params": shapes})
        restored = ckpt.restore(target, step, log=log, partial=True)
    return Renderer(make_render_fn(config, model), restored["params"], int(restored["step"]), mesh, model)


def depth_offsets(positions: np.ndarray, orbit: orbits.Orbit, config) -> Optional[np.ndarray]:
    """[N] how much farther cameras at `positions` [N, 3] are from the scene centre than the training
    cameras (`orbit`: their median distance), by which their rays' near and far move, so that a
    camera flying out of a bounded scene does not cut it off (render.py's paths, the viewer). None
    for unbounded scenes (`contraction`), whose content lies at every depth, and forward-facing
    ones, whose NDC rays span the whole depth: their rays keep near and far."""
    if config.contraction or config.forward_facing:
        return None
    return np.linalg.norm(np.asarray(positions) - orbit.center, axis=-1) - float(np.median(orbit.distances))


def ray_bounds(config, offset: float = 0.0) -> tuple[float, float]:
    """`near` and `far` of the rays of a camera `offset` (`depth_offsets`) farther out than the training cameras."""
    return max(config.near + offset, 0.0), config.far + offset


def render_views(renderer: Renderer, camtoworlds: np.ndarray, intrinsics: camera.Intrinsics, height: int, width: int,
                 config, desc: str, offsets: Optional[np.ndarray] = None) -> Iterator[Image]:
    """Renders the view of each camera in turn, with a progress bar `desc` over the views.

    Rays are cast on the device a chunk at a time, so memory does not grow with the image size or
    the number of views.

    Args:
      camtoworlds: [N, 3 or 4, 4] camera-to-world matrices.
      intrinsics: the N cameras' `Intrinsics` (fields [N]), or one camera's (scalar fields) for every view.
      height, width: image size in pixels, shared by every view.
      config: supplies `near`, `far` and `render_chunk`.
      offsets: [N] by which each view's rays' near and far move (`depth_offsets`); None for 0.

    Yields:
      N `Image`s, in camera order.
    """
    lens = camera.Lens.of(intrinsics)
    offsets = np.zeros(len(camtoworlds)) if offsets is None else offsets
    for n, c2w in enumerate(tqdm.tqdm(camtoworlds, desc=desc, unit="view")):
        cameras = view_camera(c2w, intrinsics, n, width, height, *ray_bounds(config, offsets[n]))
        yield render_image(renderer.render_fn, renderer.params, cameras, lens, config.render_chunk, renderer.mesh)


def view_camera(c2w: np.ndarray, intrinsics: camera.Intrinsics, n: int, width: int, height: int, near: float,
                far: float) -> camera.Cameras:
    """View n's camera (`camera.Cameras` with scalar fields, float32 numpy) from its [3 or 4, 4]
    camera-to-world matrix and the views' `Intrinsics` ([N] fields, or one camera's for every view)."""
    cam = intrinsics if np.ndim(intrinsics.fx) == 0 else intrinsics.take(n)
    return jax.tree.map(lambda x: x[0], camera.Cameras.of(np.asarray(c2w)[None], cam, width, height, near, far))
