"""A coloured mesh from a trained model: the NeRF round's density on a grid, its level surface by
marching cubes (scikit-image), and each vertex coloured by a short ray onto it from the nearest
training camera that sees it."""

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from skimage import measure

from mipnerf import datasets
from mipnerf.cameras import camera
from mipnerf.model import mipnerf360
from mipnerf.render import rendering

CHUNK = 1 << 16  # grid points (or vertices) per jitted call


def density_grid(renderer: rendering.Renderer, model, center: np.ndarray, half_width: float, resolution: int):
    """The NeRF round's density [R, R, R] at the centres of R^3 cells tiling the cube `center` ±
    `half_width` (index order x, y, z); each point is seen as a cell of the grid's spacing."""
    spacing = 2 * half_width / resolution
    axis = (np.arange(resolution) + 0.5) * spacing - half_width
    fn = jax.jit(lambda params, points: model.apply(params, points, jnp.full(points.shape[:-1], spacing),
                                                    method=mipnerf360.MipNerf360.nerf_density))
    out = np.empty(resolution**3, np.float32)
    total = resolution**3
    for start in tqdm.trange(0, total, CHUNK, desc="mesh: density grid", unit="chunk"):
        index = np.minimum(np.arange(start, start + CHUNK), total - 1)  # the last chunk repeats a point
        i, j, k = np.unravel_index(index, (resolution,) * 3)
        points = np.stack([axis[i], axis[j], axis[k]], axis=-1) + center
        out[start:start + CHUNK] = np.asarray(fn(renderer.params, points.astype(np.float32)))[:total - start]
    return out.reshape((resolution,) * 3)


def surface(density: np.ndarray, level: float, center: np.ndarray, half_width: float):
    """Marching cubes on the density grid: (vertices [V, 3] in the model's frame, faces [F, 3],
    outward normals [V, 3]); raises ValueError when the level is not crossed."""
    resolution = density.shape[0]
    spacing = 2 * half_width / resolution
    verts, faces, normals, _ = measure.marching_cubes(density, level=level, spacing=(spacing,) * 3)
    # Normals from the gradient's descent point out of dense regions; the faces wind accordingly.
    return verts + (center - half_width + 0.5 * spacing), faces, normals


def choose_cameras(vertices: np.ndarray, normals: np.ndarray, train: datasets.Split) -> np.ndarray:
    """[V] the nearest training camera that sees each vertex: in front of it, inside its image and
    facing it (the outward normal towards the camera); -1 where none does."""
    c2w = np.asarray(train.camtoworlds, np.float64)
    centres = c2w[:, :3, 3]
    best = np.full(len(vertices), -1)
    best_distance = np.full(len(vertices), np.inf)
    for n in range(len(c2w)):
        pixels = camera.project(vertices, c2w[n], train.intrinsics.take(n))
        to_camera = centres[n] - vertices
        distance = np.linalg.norm(to_camera, axis=-1)
        local_z = (vertices - centres[n]) @ c2w[n, :3, 2]  # the camera looks down -z
        sees = ((local_z < 0) & (np.sum(normals * to_camera, axis=-1) > 0) & np.all(np.isfinite(pixels), axis=-1)
                & (pixels[:, 0] >= 0) & (pixels[:, 0] < train.width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < train.height))
        closer = sees & (distance < best_distance)
        best[closer], best_distance[closer] = n, distance[closer]
    return best


def vertex_colors(renderer: rendering.Renderer, model, vertices: np.ndarray, normals: np.ndarray,
                  train: datasets.Split, config, depth: float) -> np.ndarray:
    """[V, 3] uint8: each vertex's colour as the nearest training camera that sees it renders a ray
    through it from `depth` in front of it to `depth` behind (the background taken out); grey for
    a vertex no camera sees."""
    chosen = choose_cameras(vertices, normals, train)
    background = mipnerf360.background_color(config)
    fx = np.asarray(train.intrinsics.fx, np.float64)

    @jax.jit
    def shade(params, origins, targets, radii):
        offset = targets - origins
        distance = jnp.linalg.norm(offset, axis=-1, keepdims=True)
        directions = offset / distance
        rays = camera.Rays(origins, directions, directions, radii, distance - depth, distance + depth)
        out, _ = model.apply(params, None, rays, 1.0, background)
        acc = out.acc[..., None]
        return jnp.clip((out.rgb - (1 - acc) * background) / jnp.maximum(acc, 1e-3), 0.0, 1.0)

    colors = np.full((len(vertices), 3), 0.5, np.float32)
    seen = np.flatnonzero(chosen >= 0)
    chunk = config.render_chunk  # whole rays through the model, as in rendering
    for start in tqdm.trange(0, len(seen), chunk, desc="mesh: vertex colours", unit="chunk"):
        index = seen[np.minimum(np.arange(start, start + chunk), len(seen) - 1)]
        n = chosen[index]
        origins = np.asarray(train.camtoworlds, np.float32)[n, :3, 3]
        radii = (2 / np.sqrt(12) / fx[n])[:, None].astype(np.float32)  # a pixel's cone, as cast_rays makes it
        rgb = np.asarray(shade(renderer.params, origins, vertices[index].astype(np.float32), radii))
        colors[index] = rgb
    return np.round(colors * 255).astype(np.uint8)
