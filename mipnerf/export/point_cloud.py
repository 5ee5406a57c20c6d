"""A coloured point cloud from a trained model: each training pixel's expected-depth point, kept
where the render is opaque and its depth is certain (the median and expected depths agree)."""

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from mipnerf import datasets
from mipnerf.cameras import camera
from mipnerf.model import mipnerf360
from mipnerf.render import rendering

MIN_OPACITY = 0.95  # a pixel's point is kept only where the render is this opaque
MAX_DEPTH_SPREAD = 0.02  # ... and its median depth is within this fraction of its expected depth


def median_depth(weights: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
    """[...] where the weights [..., S] on intervals t [..., S+1] reach half their sum, linear within
    the interval that crosses it."""
    cum = jnp.cumsum(weights, axis=-1)
    half = 0.5 * cum[..., -1:]
    i = jnp.minimum(jnp.sum(cum < half, axis=-1, keepdims=True), weights.shape[-1] - 1)
    before = jnp.take_along_axis(cum, i, axis=-1) - jnp.take_along_axis(weights, i, axis=-1)
    frac = jnp.clip((half - before) / jnp.maximum(jnp.take_along_axis(weights, i, axis=-1), 1e-10), 0.0, 1.0)
    t0, t1 = jnp.take_along_axis(t, i, axis=-1), jnp.take_along_axis(t, i + 1, axis=-1)
    return (t0 + frac * (t1 - t0))[..., 0]


def depth_is_certain(final_round, depth: jnp.ndarray) -> jnp.ndarray:
    """[...] whether each ray's median depth (of its final round's weights) is within
    `MAX_DEPTH_SPREAD` of its expected `depth` [...]: one surface, not a blend of two."""
    median = median_depth(final_round.weights, final_round.t)
    return jnp.abs(median - depth) <= MAX_DEPTH_SPREAD * depth


def make_points_fn(config, model):
    """A jitted `(params, cameras, pixels [B], lens) -> (points [B, 3], rgb [B, 3], keep [B])`: each
    pixel's expected-depth point in the model's frame, its colour, and whether it is kept."""
    background = mipnerf360.background_color(config)

    def points(params, cameras: camera.Cameras, pixels, lens: camera.Lens):
        rays = camera.pixel_rays(cameras, pixels, lens, config.forward_facing)
        out, rounds = model.apply(params, None, rays, 1.0, background)
        keep = (out.acc > MIN_OPACITY) & depth_is_certain(rounds[-1], out.depth)
        return rays.origins + out.depth[..., None] * rays.directions, out.rgb, keep

    return jax.jit(points, static_argnames="lens")


def export_points(renderer: rendering.Renderer, points_fn, train: datasets.Split, config, views: np.ndarray,
                  center: np.ndarray, half_width: float) -> tuple[np.ndarray, np.ndarray]:
    """The kept points of training `views` inside the cube `center` ± `half_width`, at most
    `config.export_points` of them (a random subset, seeded, when there are more).

    Returns:
      (points [P, 3] float32, colours [P, 3] uint8).
    """
    cameras = datasets.split_cameras(train, config)
    lens = camera.Lens.of(train.intrinsics)
    kept_points, kept_colors = [], []
    for n in tqdm.tqdm(views, desc="point cloud: render views", unit="view"):
        cam = jax.tree.map(lambda x: x[n], cameras)
        points, rgb, keep = rendering.concat_chunks(
            rendering.image_chunks(points_fn, renderer.params, cam, lens, config.render_chunk, renderer.mesh),
            train.height * train.width)
        keep &= np.all(np.abs(points - center) <= half_width, axis=-1)
        kept_points.append(points[keep])
        kept_colors.append(rgb[keep])
    points, colors = np.concatenate(kept_points), np.concatenate(kept_colors)
    if len(points) > config.export_points:
        chosen = np.sort(np.random.default_rng(config.seed).choice(len(points), config.export_points, replace=False))
        points, colors = points[chosen], colors[chosen]
    return points.astype(np.float32), np.round(np.clip(colors, 0, 1) * 255).astype(np.uint8)
