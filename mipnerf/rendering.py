"""Rendering whole images in fixed-size chunks of rays with one jitted, deterministic function.

Shared by training's validation views, eval.py and render.py. Every chunk has the same shape
(the last is padded), so the render function compiles once.
"""

from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from mipnerf.camera import Rays
from mipnerf.training import background_color


class Image(NamedTuple):
    """A rendered view: rgb [H, W, 3], depth [H, W], acc [H, W] (opacity), float32 numpy arrays."""

    rgb: np.ndarray
    depth: np.ndarray
    acc: np.ndarray


def make_render_fn(config, model):
    """A jitted `(params, rays [B, ...]) -> Composite` with deterministic sampling."""
    background = background_color(config)

    def render_rays(params, rays: Rays):
        out, _ = model.apply(params, None, rays, 1.0, background)
        return out

    return jax.jit(render_rays)


def render_image(render_fn, params, rays: Rays, chunk: int, mesh: Mesh) -> Image:
    """Renders one view.

    Args:
      render_fn: from `make_render_fn`.
      rays: `Rays` with fields [H, W, C] (numpy).
      chunk: rays per call; rounded up to a multiple of the device count.
      mesh: the device mesh; each chunk is sharded over its "data" axis.
    """
    height, width = rays.origins.shape[:2]
    chunk = -(-chunk // mesh.size) * mesh.size
    num = height * width
    padded = -(-num // chunk) * chunk
    flat = [np.pad(np.reshape(x, (num, -1)), ((0, padded - num), (0, 0)), mode="edge") for x in rays]
    sharding = NamedSharding(mesh, P("data"))
    # Dispatch every chunk before reading any back, so the device never waits on the host.
    outs = [render_fn(params, jax.device_put(Rays(*(x[i:i + chunk] for x in flat)), sharding))
            for i in range(0, padded, chunk)]
    outs = jax.device_get(outs)
    join = lambda field: np.concatenate([getattr(o, field) for o in outs])[:num]
    return Image(rgb=join("rgb").reshape(height, width, 3), depth=join("depth").reshape(height, width),
                 acc=join("acc").reshape(height, width))
