"""Volume rendering: densities along a ray to alphas and weights, and compositing.

Pure `jax.numpy`, float32. Distances `t` are in units of the (non-normalised) ray direction;
the direction's norm turns them into world-space lengths for the optical depth.
"""

from typing import NamedTuple

import jax.numpy as jnp


class Composite(NamedTuple):
    """What one ray renders to.

    rgb: [..., 3] colour composited onto the background.
    depth: [..., ] expected termination distance given that the ray terminates, in units of t.
    acc: [..., ] opacity, the total weight along the ray.
    """

    rgb: jnp.ndarray
    depth: jnp.ndarray
    acc: jnp.ndarray


def compute_weights(density: jnp.ndarray, t: jnp.ndarray, dirs: jnp.ndarray, opaque: bool = False) -> jnp.ndarray:
    """Weights of the quadrature of the volume rendering integral (NeRF eq. 3).

    alpha_i = 1 - exp(-sigma_i delta_i), T_i = exp(-sum_{j<i} sigma_j delta_j), w_i = alpha_i T_i,
    with delta_i the world-space length of interval i.

    Args:
      density: [..., S] non-negative densities.
      t: [..., S+1] breakpoints along the ray.
      dirs: [..., 3] ray directions.
      opaque: the last interval is opaque (alpha 1), so the weights sum to exactly 1: the scene
        has no background (real captures).

    Returns:
      [..., S] weights, each in [0, 1], summing to at most 1.
    """
    delta = (t[..., 1:] - t[..., :-1]) * jnp.linalg.norm(dirs[..., None, :], axis=-1)
    optical_depth = density * delta
    zero = jnp.zeros_like(optical_depth[..., :1])
    depth_before = jnp.concatenate([zero, jnp.cumsum(optical_depth[..., :-1], axis=-1)], axis=-1)
    alpha = 1 - jnp.exp(-optical_depth)
    if opaque:
        alpha = alpha.at[..., -1].set(1.0)
    return alpha * jnp.exp(-depth_before)


def composite(weights: jnp.ndarray, rgb: jnp.ndarray, t: jnp.ndarray, background) -> Composite:
    """Composites per-interval colours onto a background.

    Args:
      weights: [..., S]; rgb: [..., S, 3]; t: [..., S+1].
      background: [3] or [..., 3] colour behind the ray (1 for white, 0 for black).

    Returns:
      a `Composite`.
    """
    acc = jnp.sum(weights, axis=-1)
    color = jnp.sum(weights[..., None] * rgb, axis=-2) + (1 - acc[..., None]) * background
    mids = (t[..., 1:] + t[..., :-1]) / 2
    depth = jnp.sum(weights * mids, axis=-1) / jnp.maximum(acc, 1e-10)
    depth = jnp.clip(depth, t[..., 0], t[..., -1])
    return Composite(rgb=color, depth=depth, acc=acc)
