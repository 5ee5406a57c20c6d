"""A differentiable tile rasteriser for 3D Gaussians (3D Gaussian splatting, Kerbl et al. 2023), in JAX.

A view is rendered in three steps, each a fixed-shape array program (jitted; CPU or GPU):
1. Project (EWA splatting, Zwicker et al. 2001): each Gaussian's mean to the image, its covariance
   to Sigma' = J W Sigma W^T J^T + `DILATION` I, with W the world-to-camera rotation and J the
   Jacobian of the perspective projection at the mean (its x/z, y/z clamped to 1.3x the field of
   view, as the original does, so that Gaussians far outside the view stay well-conditioned).
2. Bin: every (Gaussian, 16x16 tile; 4x4 on a CPU) pair whose tile the Gaussian can reach, sorted by tile and then
   by depth, so that each tile reads its Gaussians front to back.
3. Blend each pixel front to back: alpha_i = min(0.99, o_i exp(-d^T Sigma'^-1 d / 2)), skipped
   below 1/255; colour sum_i c_i alpha_i T_i + T background, T_i = prod_{j<i} (1 - alpha_j);
   a pixel stops (early termination) before the Gaussian that would take T below 1e-4.

How far a Gaussian reaches is where its alpha falls below 1/255: a Mahalanobis distance of
sqrt(2 ln(255 o)), so binning drops only what blending would skip, and the tiled image equals
blending every Gaussian at every pixel (tests/test_rasterize.py checks it against numpy).

Binning has data-dependent sizes (how many pairs, how many Gaussians the fullest tile holds); they
are compiled in as a `Plan` of capacities, rounded up to powers of two, which `plan` measures for
a view. A plan too small for a view drops the excess, which `Raster.overflow` reports.

To look at splats on a CPU, `rasterize_cpu` draws the same image with compiled loops, several
times faster.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mipnerf.cameras import camera
from mipnerf.render import gaussians

TILE = 16  # pixels on a tile's side, as the original's thread blocks on a GPU
CPU_TILE = 4  # on a CPU, with no blocks to fill, smaller tiles blend fewer Gaussians that miss a pixel
DILATION = 0.3  # pixels^2 added to each projected covariance: every splat covers about a pixel
MIN_ALPHA = 1.0 / 255.0
MAX_ALPHA = 0.99
MIN_TRANSMITTANCE = 1e-4
NEAR_PLANE = 0.01  # Gaussians with their mean nearer the camera than this (in depth) are culled
FOV_CLAMP = 1.3
CHUNK = 32  # Gaussians of a tile blended together; a tile's list is cut into chunks of this many


class Projected(NamedTuple):
    """Gaussians [N] in one view: means2d [N, 2] in pixels (pixel centres at i + 0.5); conics [N, 3]
    (a, b, c of Sigma'^-1 = [[a, b], [b, c]]); depths [N]; opacities [N]; colors [N, 3];
    rects [N, 4] int32 (first and last tile column, first and last tile row); visible [N] bool."""

    means2d: jnp.ndarray
    conics: jnp.ndarray
    depths: jnp.ndarray
    opacities: jnp.ndarray
    colors: jnp.ndarray
    rects: jnp.ndarray
    visible: jnp.ndarray


class Plan(NamedTuple):
    """Static capacities of binning: pairs (Gaussian, tile) and Gaussians per tile; the tiles' side."""

    pairs: int
    per_tile: int
    tile: int = TILE


def default_tile() -> int:
    """`TILE` on a GPU, `CPU_TILE` on a CPU."""
    return TILE if jax.default_backend() == "gpu" else CPU_TILE


class Raster(NamedTuple):
    """A rendered view: rgb [H, W, 3]; alpha [H, W] (1 - the final transmittance); importance [N],
    each Gaussian's largest blending weight alpha_i T_i at any pixel; overflow, whether the plan was
    too small (some pairs dropped)."""

    rgb: jnp.ndarray
    alpha: jnp.ndarray
    importance: jnp.ndarray
    overflow: jnp.ndarray


def world_to_opencv(cam: camera.Cameras):
    """(rotation [3, 3], translation [3]) taking world points to the camera's OpenCV frame (x right,
    y down, z forward) of a camera whose `camtoworlds` [3, 4] is in the OpenGL convention (numpy
    arrays for numpy fields, jax arrays for jax ones)."""
    rotation = cam.camtoworlds[:3, :3].T * np.array([1.0, -1.0, -1.0])[:, None]
    return rotation, -rotation @ cam.camtoworlds[:3, 3]


def project(splats: gaussians.Splats, cam: camera.Cameras, width: int, height: int,
            sh_degree: int | None = None, tile: int = TILE) -> Projected:
    """Gaussians in the view of one pinhole camera (`Cameras` with scalar fields; no distortion).

    sh_degree: the bands used for colour (the splats' own degree when None). tile: the tiles' side.
    """
    rotation, translation = world_to_opencv(cam)
    p = splats.means @ rotation.T + translation
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    k = cam.intrinsics
    safe_z = jnp.where(z > NEAR_PLANE, z, 1.0)
    means2d = jnp.stack([k.fx * x / safe_z + k.cx, k.fy * y / safe_z + k.cy], axis=-1)
    lim_x, lim_y = FOV_CLAMP * 0.5 * width / k.fx, FOV_CLAMP * 0.5 * height / k.fy
    tx = jnp.clip(x / safe_z, -lim_x, lim_x) * safe_z
    ty = jnp.clip(y / safe_z, -lim_y, lim_y) * safe_z
    zero = jnp.zeros_like(z)
    jac = jnp.stack([jnp.stack([k.fx / safe_z, zero, -k.fx * tx / safe_z ** 2], -1),
                     jnp.stack([zero, k.fy / safe_z, -k.fy * ty / safe_z ** 2], -1)], -2)  # [N, 2, 3]
    m = jac @ rotation
    cov2d = m @ gaussians.covariances(splats.log_scales, splats.quats) @ jnp.swapaxes(m, -1, -2)
    a, b, c = cov2d[:, 0, 0] + DILATION, cov2d[:, 0, 1], cov2d[:, 1, 1] + DILATION
    det = a * c - b * b
    safe_det = jnp.where(det > 0, det, 1.0)
    conics = jnp.stack([c / safe_det, -b / safe_det, a / safe_det], axis=-1)
    opacity = gaussians.opacities(splats.opacity_logits)
    # Beyond Mahalanobis distance sqrt(2 ln(255 o)), alpha < 1/255: the reach along x and y.
    reach = jnp.sqrt(2.0 * jnp.log(jnp.maximum(opacity / MIN_ALPHA, 1.0)))
    half = reach[:, None] * jnp.sqrt(jnp.stack([a, c], axis=-1))
    tiles = np.array([-(-width // tile), -(-height // tile)])
    lo = jnp.clip(jnp.floor((means2d - half) / tile), -1, tiles).astype(jnp.int32)
    hi = jnp.clip(jnp.floor((means2d + half) / tile), -1, tiles).astype(jnp.int32)
    first, last = jnp.maximum(lo, 0), jnp.minimum(hi, tiles - 1)
    visible = (z > NEAR_PLANE) & (det > 0) & (opacity >= MIN_ALPHA) & jnp.all(first <= last, axis=-1)
    rects = jnp.concatenate([first[:, :1], last[:, :1], first[:, 1:], last[:, 1:]], axis=-1)
    sh = splats.sh if sh_degree is None else splats.sh[:, :(sh_degree + 1) ** 2]
    centre = cam.camtoworlds[:3, 3]
    dirs = splats.means - centre
    dirs = dirs / jnp.maximum(jnp.linalg.norm(dirs, axis=-1, keepdims=True), 1e-12)
    return Projected(means2d, conics, z, opacity, gaussians.sh_colors(sh, dirs), rects, visible)


def tile_counts(proj: Projected) -> jnp.ndarray:
    """[N] int32: how many tiles each Gaussian reaches (0 when culled)."""
    r = proj.rects
    count = (r[:, 1] - r[:, 0] + 1) * (r[:, 3] - r[:, 2] + 1)
    return jnp.where(proj.visible, count, 0)


@functools.partial(jax.jit, static_argnames=("width", "height", "tile"))
def _needs(splats, cam, width: int, height: int, tile: int):
    proj = project(splats, cam, width, height, sh_degree=0, tile=tile)
    counts = tile_counts(proj)
    tiles_x = -(-width // tile)
    tiles = (-(-height // tile)) * tiles_x
    # Each Gaussian adds one to every tile of its rectangle: a 2D difference array, summed.
    r = proj.rects
    grid = jnp.zeros((tiles // tiles_x + 1, tiles_x + 1), jnp.int32)
    on = proj.visible.astype(jnp.int32)
    grid = grid.at[r[:, 2], r[:, 0]].add(on).at[r[:, 2], r[:, 1] + 1].add(-on)
    grid = grid.at[r[:, 3] + 1, r[:, 0]].add(-on).at[r[:, 3] + 1, r[:, 1] + 1].add(on)
    per_tile = jnp.cumsum(jnp.cumsum(grid, axis=0), axis=1)[:-1, :-1]
    return jnp.sum(counts), jnp.max(per_tile)


def bucket(n: int, least: int = CHUNK) -> int:
    """At least n (and `least`): a power of two times 1, 1.25, 1.5 or 1.75, a multiple of `least` (a
    power of two); few distinct plans, few compilations, at most a quarter of the capacity unused."""
    n = max(int(n), least)
    top = 1 << (n - 1).bit_length()
    return next(c for c in (top // 8 * 5, top // 4 * 3, top // 8 * 7, top) if c >= n and c % least == 0)


def plan(splats: gaussians.Splats, cam: camera.Cameras, width: int, height: int, tile: int | None = None) -> Plan:
    """The capacities that render this view without dropping a pair, rounded up to powers of two,
    with tiles of side `tile` (None: `default_tile()`)."""
    tile = tile or default_tile()
    pairs, per_tile = jax.device_get(_needs(splats, cam, width, height, tile))
    return Plan(bucket(pairs), bucket(per_tile), tile)


def _sort_pairs_numpy(tile, owner, depths):
    tile, owner, depths = np.asarray(tile), np.asarray(owner), np.asarray(depths)
    rank = np.empty(len(depths), np.int64)
    rank[np.argsort(depths)] = np.arange(len(depths))
    order = np.argsort(tile.astype(np.int64) * len(depths) + rank[owner])  # unique keys: any sort is stable
    return tile[order], owner[order]


def sort_pairs(tile, owner, depths):
    """(Gaussian, tile) pairs [P] sorted by tile and then by their Gaussian's depth (`depths` [N]).

    On a GPU, XLA's sort; on a CPU, numpy's (XLA's CPU sort of a two-part key takes 20x longer):
    each pair's key is its tile times N plus its Gaussian's depth rank.
    """
    if jax.default_backend() == "gpu":
        tile, _, owner = jax.lax.sort((tile, depths[owner], owner), num_keys=2)
        return tile, owner
    shapes = (jax.ShapeDtypeStruct(tile.shape, jnp.int32),) * 2
    return jax.pure_callback(_sort_pairs_numpy, shapes, tile, owner, depths)


def bin_chunks(proj: Projected, tiles_x: int, tiles: int, capacity: Plan):
    """Each tile's Gaussians front to back, cut into chunks of `CHUNK`: all tiles' chunks in one list,
    so that a tile costs what it holds, not what the fullest tile holds.

    Returns:
      (ids [J, CHUNK] int32 Gaussian indices, valid [J, CHUNK] bool, tile [J] each chunk's tile,
      place [J] the chunk's place in its tile's list, overflow bool), J = pairs / CHUNK + tiles.
    """
    counts = tile_counts(proj)
    ends = jnp.cumsum(counts)
    total = ends[-1]
    pair = jnp.arange(capacity.pairs)
    owner = jnp.minimum(jnp.searchsorted(ends, pair, side="right"), counts.shape[0] - 1)
    local = pair - (ends[owner] - counts[owner])
    r = proj.rects[owner]
    columns = r[:, 1] - r[:, 0] + 1
    tile = (r[:, 2] + local // columns) * tiles_x + r[:, 0] + local % columns
    tile = jnp.where(pair < total, tile, tiles)  # unused capacity sorts last
    tile, owner = sort_pairs(tile.astype(jnp.int32), owner.astype(jnp.int32), jax.lax.stop_gradient(proj.depths))
    start = jnp.searchsorted(tile, jnp.arange(tiles), side="left")
    stop = jnp.searchsorted(tile, jnp.arange(tiles), side="right")
    chunks = -(-(stop - start) // CHUNK)
    chunk_ends = jnp.cumsum(chunks)
    j = jnp.arange(capacity.pairs // CHUNK + tiles)
    of = jnp.minimum(jnp.searchsorted(chunk_ends, j, side="right"), tiles - 1)
    place = j - (chunk_ends[of] - chunks[of])
    slot = start[of, None] + place[:, None] * CHUNK + jnp.arange(CHUNK)
    valid = (slot < stop[of, None]) & (j < chunk_ends[-1])[:, None]
    ids = owner[jnp.minimum(slot, capacity.pairs - 1)]
    overflow = (total > capacity.pairs) | jnp.any(stop - start > capacity.per_tile)
    return ids, valid, of, jnp.clip(place, 0, capacity.per_tile // CHUNK - 1), overflow


def blend(pixels, ids, valid, tile, place, proj: Projected, background, tiles: int, places: int):
    """Front-to-back blending of every tile's Gaussians at its pixels, all chunks at once.

    Transmittance before a chunk is the product over its tile's earlier chunks, summed (as logs)
    on a [tiles, places] grid; a Gaussian is kept while the transmittance after it (every earlier
    one counted) stays at least 1e-4, which is the original's early termination exactly: T only
    falls, so what is kept is a prefix of each pixel's list.

    Args:
      pixels: [T, P, 2] each tile's pixel positions; ids, valid, tile, place: `bin_chunks`'s.

    Returns:
      (rgb [T, P, 3], alpha [T, P], weights [J, CHUNK]: each Gaussian's largest alpha_i T_i in its tile).
    """
    g = lambda x: x[ids]
    means2d, conics, opacity = g(proj.means2d), g(proj.conics), g(proj.opacities)
    d = pixels[tile][:, :, None, :] - means2d[:, None]  # [J, P, C, 2]
    power = (-0.5 * (conics[:, None, :, 0] * d[..., 0] ** 2 + conics[:, None, :, 2] * d[..., 1] ** 2)
             - conics[:, None, :, 1] * d[..., 0] * d[..., 1])
    alpha = jnp.minimum(MAX_ALPHA, opacity[:, None] * jnp.exp(jnp.minimum(power, 0.0)))
    alpha = jnp.where(valid[:, None] & (power <= 0) & (alpha >= MIN_ALPHA), alpha, 0.0)
    logs = jnp.log1p(-alpha)
    # Below e^-30 a pixel has long stopped: clamping keeps the sums small (and exact where they matter).
    per_chunk = jnp.maximum(jnp.sum(logs, axis=-1), -30.0)
    grid = jnp.zeros((tiles, places, pixels.shape[1])).at[tile, place].add(per_chunk)
    before = (jnp.cumsum(grid, axis=1) - grid)[tile, place]  # [J, P]
    after = before[..., None] + jnp.cumsum(logs, axis=-1)
    kept = after >= np.log(MIN_TRANSMITTANCE)
    weights = jnp.where(kept, alpha * jnp.exp(after - logs), 0.0)
    rgb = jnp.zeros((tiles,) + pixels.shape[1:2] + (3,)).at[tile].add(jnp.einsum("jpc,jck->jpk", weights,
                                                                                  g(proj.colors)))
    log_t = jnp.zeros((tiles, pixels.shape[1])).at[tile].add(jnp.sum(jnp.where(kept, logs, 0.0), axis=-1))
    final = jnp.exp(log_t)
    return rgb + final[..., None] * background, 1.0 - final, jnp.max(weights, axis=1)


@functools.partial(jax.jit, static_argnames=("width", "height", "capacity", "sh_degree"))
def rasterize(splats: gaussians.Splats, cam: camera.Cameras, width: int, height: int, background,
              capacity: Plan, sh_degree: int | None = None, means2d_offset=None) -> Raster:
    """Renders one view of the splats.

    Args:
      cam: one pinhole camera (`Cameras` with scalar fields).
      background: [3] colour behind the splats.
      capacity: binning capacities (`plan`).
      means2d_offset: optional [N, 2] added to the projected means; zeros whose gradient is the
        loss's gradient with respect to each Gaussian's image position (densification's statistic).
    """
    tile = capacity.tile
    proj = project(splats, cam, width, height, sh_degree, tile)
    if means2d_offset is not None:
        proj = proj._replace(means2d=proj.means2d + means2d_offset)
    tiles_x, tiles_y = -(-width // tile), -(-height // tile)
    tiles = tiles_x * tiles_y
    ids, valid, of, place, overflow = bin_chunks(proj, tiles_x, tiles, capacity)
    offsets = jnp.stack(jnp.meshgrid(jnp.arange(tile), jnp.arange(tile), indexing="xy"), -1).reshape(-1, 2) + 0.5
    corners = jnp.stack(jnp.meshgrid(jnp.arange(tiles_x), jnp.arange(tiles_y), indexing="xy"), -1).reshape(-1, 2)
    pixels = corners[:, None, :] * tile + offsets[None]  # [tiles, tile^2, 2]
    rgb, alpha, weights = blend(pixels, ids, valid, of, place, proj, background, tiles, capacity.per_tile // CHUNK)
    importance = jnp.zeros(splats.means.shape[0]).at[ids].max(jnp.where(valid, weights, 0.0))
    image = lambda x: (x.reshape(tiles_y, tiles_x, tile, tile, *x.shape[2:]).swapaxes(1, 2)
                       .reshape(tiles_y * tile, tiles_x * tile, *x.shape[2:])[:height, :width])
    return Raster(image(rgb), image(alpha), importance, overflow)


def render(splats: gaussians.Splats, cam: camera.Cameras, width: int, height: int, background,
           sh_degree: int | None = None) -> Raster:
    """`rasterize` with the plan this view needs."""
    return rasterize(splats, cam, width, height, jnp.asarray(background, jnp.float32),
                     plan(splats, cam, width, height), sh_degree)
