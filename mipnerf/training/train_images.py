"""The training set on the devices: images as uint8 pixels with a camera each, placed in blocks of
whole images (`put_train_images`), and the draw of a batch inside the jitted step (`draw_batch`):
uniform pixels, their colours gathered and their rays cast there.

A training pixel costs 3 bytes on the device (its colour); an image, its camera (about 120 bytes).
Pixels that a mask excludes (`Split.masks`) are not placed at all: each image's kept pixels are
stored in runs (maximal stretches of consecutive kept pixels in row-major order, 12 bytes each;
an image without a mask is one run), so that draws are uniform over the kept pixels and a
masked pixel can never be drawn.
"""

from typing import NamedTuple, Optional

import flax
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from mipnerf import datasets
from mipnerf.cameras import camera, pose_refine
from mipnerf.cameras.camera import Cameras, Lens, Rays
from mipnerf.errors import ConfigError


class RayData(NamedTuple):
    """A batch of rays with their true colours. Leading shape [N]."""

    rays: Rays
    rgb: jnp.ndarray  # [N, 3]
    lossmult: Optional[jnp.ndarray] = None  # [N, 1] weight of each ray in the data loss; None for 1
    image: Optional[jnp.ndarray] = None  # [N] int32 each ray's training image (as `TrainImages.ids`), or None


@flax.struct.dataclass
class TrainImages:
    """The training set resident on the devices: its images' kept pixels as uint8, and a camera per image.

    Device d holds a block of whole images: rows [d * M, (d + 1) * M) of `pixels`, of which the
    first `counts[d]` are its images' kept pixels (all of an image without a mask), image after
    image, each in row-major order; entries [d * K, (d + 1) * K) of the per-image fields; and
    entries [d * R, (d + 1) * R) of the per-run fields. A run is a stretch of consecutive kept
    pixels of one image: `starts` gives its first row in its device's block, `run_images` its
    image (an entry of the device's K), `run_pixels` the row-major index of its first pixel in
    that image. Padding runs start at `counts[d]`, so that no drawn row falls in them. Arrays are
    sharded over the mesh's "data" axis; `lens` and `ndc` are static.
    """

    pixels: jnp.ndarray  # [D * M, 3] uint8
    counts: jnp.ndarray  # [D] int32
    cameras: Cameras  # fields [D * K, ...]
    ids: jnp.ndarray  # [D * K] int32: each entry's image among the process's, splits in order
    lossmult: Optional[jnp.ndarray]  # [D * K] float32 weight of each image's rays in the data loss, or None
    starts: jnp.ndarray  # [D * R] int32
    run_images: jnp.ndarray  # [D * R] int32
    run_pixels: jnp.ndarray  # [D * R] int32
    lens: Lens = flax.struct.field(pytree_node=False)
    ndc: bool = flax.struct.field(pytree_node=False)


class Draw(NamedTuple):
    """A drawn batch and where it came from: `image` [B] is each ray's image among the process's
    training images (the splits' images in order), `pixel` [B] its row-major index in that image."""

    batch: RayData
    image: jnp.ndarray
    pixel: jnp.ndarray


def draw_batch(images: TrainImages, key, batch_size: int, mesh: Mesh, poses=None) -> Draw:
    """Draws `batch_size` pixels, each device `batch_size / devices` uniformly from the kept pixels
    of its own block of images, gathers their colours and casts their rays.

    Runs inside a jitted function with no communication: the batch comes out sharded over the
    mesh's "data" axis, device d's part drawn with `fold_in(key, d)`.

    poses: [N, 6] float32 corrections of the training cameras (`pose_refine`), indexed by `ids`
      and replicated; each ray's camera is corrected before its ray is cast, so that the rays
      are differentiable in them. None: the cameras as loaded.
    """
    per_device = batch_size // mesh.size
    weighted = images.lossmult is not None
    refined = poses is not None

    def draw(pixels, counts, cameras, ids, starts, run_images, run_pixels, *rest):
        *rest, key = rest
        lossmult, rest = (rest[:1], rest[1:]) if weighted else ([], rest)
        rows = jax.random.randint(jax.random.fold_in(key, jax.lax.axis_index("data")), (per_device,), 0, counts[0])
        run = jnp.searchsorted(starts, rows, side="right") - 1  # the run each row lies in
        image = run_images[run]
        cams = jax.tree.map(lambda x: x[image], cameras)
        if refined:
            cams = cams._replace(camtoworlds=pose_refine.apply(rest[0][ids[image]], cams.camtoworlds))
        pixel = run_pixels[run] + rows - starts[run]
        rays = camera.pixel_rays(cams, pixel, images.lens, images.ndc)
        rgb = pixels[rows].astype(jnp.float32) / 255.0
        batch = RayData(rays, rgb, lossmult[0][image][:, None] if weighted else None)
        return Draw(batch, ids[image], pixel.astype(jnp.int32))

    args = (images.pixels, images.counts, images.cameras, images.ids, images.starts, images.run_images,
            images.run_pixels)
    args += (images.lossmult,) if weighted else ()
    replicated = (poses,) if refined else ()
    specs = (P("data"),) * len(args) + (P(),) * (len(replicated) + 1)
    return jax.shard_map(draw, mesh=mesh, in_specs=specs, out_specs=P("data"))(*args, *replicated, key)


def sample_batch(images: TrainImages, key, batch_size: int, mesh: Mesh, poses=None) -> RayData:
    """The rays, float32 colours, loss weights and training images of `draw_batch`: leading shape [batch_size]."""
    draw = draw_batch(images, key, batch_size, mesh, poses)
    return draw.batch._replace(image=draw.image)


def image_blocks(pixel_counts: np.ndarray, parts: int) -> np.ndarray:
    """Cuts images into `parts` contiguous blocks of nearly equal pixel counts, at least one image each.

    Args:
      pixel_counts: [N] pixels of each image, in order.

    Returns:
      [parts + 1] image indices: block p holds images [b[p], b[p + 1]).
    """
    count = len(pixel_counts)
    if count < parts:
        raise ConfigError(f"{count} training images cannot be shared by {parts} devices; expected at least one "
                          f"image per device")
    ends = np.cumsum(pixel_counts)
    cuts = [0]
    for p in range(1, parts):
        nearest = int(np.argmin(np.abs(ends - ends[-1] * p / parts))) + 1  # the image boundary nearest the p-th share
        cuts.append(min(max(nearest, cuts[-1] + 1), count - (parts - p)))
    return np.array(cuts + [count])


def pixel_runs(mask: Optional[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """The runs of kept pixels of an image of `size` pixels: maximal stretches of consecutive kept
    pixels in row-major order, as (first pixel [R], length [R]) int64; one run of every pixel
    without a mask ([H, W] bool, True where kept)."""
    if mask is None:
        return np.zeros(1, np.int64), np.full(1, size, np.int64)
    edges = np.diff(mask.reshape(-1).astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    first, end = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return first, end - first


class _Runs(NamedTuple):
    """The runs of kept pixels of every training image, in order (`pixel_runs`): each run's first
    pixel in its image, length, image and first row among the kept pixels [R]; each image's first
    run [N + 1] (with the end) and first row [N + 1] (with the total)."""

    pixels: np.ndarray
    lengths: np.ndarray
    images: np.ndarray
    starts: np.ndarray
    image_runs: np.ndarray
    image_starts: np.ndarray


def _runs(splits: list) -> _Runs:
    runs = [pixel_runs(None if s.masks is None else s.masks[n], s.height * s.width)
            for s in splits for n in range(len(s.images))]
    run_pixels, run_lengths = (np.concatenate(field) for field in zip(*runs))
    run_images = np.repeat(np.arange(len(runs)), [len(first) for first, _ in runs])
    sizes = np.array([np.sum(lengths) for _, lengths in runs], np.int64)  # each image's kept pixels
    return _Runs(run_pixels, run_lengths, run_images, np.concatenate([[0], np.cumsum(run_lengths)])[:-1],
                 np.searchsorted(run_images, np.arange(len(runs) + 1)), np.concatenate([[0], np.cumsum(sizes)]))


def _block_shape(runs: _Runs, cuts: np.ndarray) -> tuple[int, int, int]:
    """(rows, images, runs) of every device's block, the largest over the devices of every process."""
    counts = np.diff(runs.image_starts[cuts])
    if not counts.all():
        raise ConfigError(f"the training images of device {int(np.argmin(counts))} keep no pixel after their masks; "
                          f"expected kept pixels in every device's block of images")
    shape = int(np.max(counts)), int(np.max(np.diff(cuts))), int(np.max(np.diff(runs.image_runs[cuts])))
    if jax.process_count() > 1:
        shape = tuple(int(np.max(multihost_utils.process_allgather(v))) for v in shape)
    if shape[0] >= 2**31:  # rows are indexed with int32 on the device
        raise ConfigError(f"{shape[0]} training pixels on one device: expected fewer than 2^31; train on more devices "
                          f"or with a larger config.factor")
    return shape


def _block(first: int, last: int, shape: tuple[int, int, int], pixels, cameras, lossmult, runs: _Runs) -> dict:
    """The arrays of images `first` to `last` (exclusive) as one device holds them, padded to `shape`."""
    rows, images, num_runs = shape
    row0, count = runs.image_starts[first], runs.image_starts[last] - runs.image_starts[first]
    shard = pixels[row0:row0 + rows]  # a view; only a short last block is padded, by copying it
    if len(shard) < rows:
        shard = np.concatenate([shard, np.zeros((rows - len(shard), 3), np.uint8)])
    take = np.minimum(np.arange(first, first + images), last - 1)  # pad with the last image's camera
    run_first, run_last = runs.image_runs[first], runs.image_runs[last]
    held = np.minimum(np.arange(run_first, run_first + num_runs), run_last - 1)  # padding runs start at count
    padding = np.arange(run_first, run_first + num_runs) >= run_last
    return dict(pixels=shard, counts=np.array([count], np.int32), ids=take.astype(np.int32),
                cameras=jax.tree.map(lambda x: x[take], cameras),
                lossmult=None if lossmult is None else lossmult[take],
                starts=np.where(padding, count, runs.starts[held] - row0).astype(np.int32),
                run_images=(runs.images[held] - first).astype(np.int32),
                run_pixels=np.where(padding, 0, runs.pixels[held]).astype(np.int32))


def put_train_images(splits: list, config, mesh: Mesh) -> TrainImages:
    """Places this process's training images and cameras on its devices of the mesh.

    Each local device gets a contiguous block of whole images (`image_blocks`, by kept pixels). In a
    multi-host run each process passes the splits of its own images; a single process passes them
    all. The pixels are not copied on the host, except when there are several splits (the scales
    of a multiscale scene, joined once), when a split has masks (its kept pixels are gathered),
    and for the padding of the last device's block.

    Args:
      splits: `datasets.Split`s (one per image size) with uint8 images, and masks or None.
    """
    join = lambda parts: np.concatenate(parts) if len(parts) > 1 else parts[0]
    pixels = join([s.images.reshape(-1, 3) if s.masks is None else s.images[s.masks] for s in splits])
    cameras = jax.tree.map(lambda *x: join(x), *(datasets.split_cameras(s, config) for s in splits))
    lossmult = None
    if any(split.lossmult is not None for split in splits):
        lossmult = join([np.ones(len(s.images), np.float32) if s.lossmult is None else s.lossmult for s in splits])
    runs = _runs(splits)
    local_devices = [d for d in mesh.devices.flat if d.process_index == jax.process_index()]
    cuts = image_blocks(np.diff(runs.image_starts), len(local_devices))
    shape = _block_shape(runs, cuts)
    blocks = [_block(cuts[d], cuts[d + 1], shape, pixels, cameras, lossmult, runs) for d in range(len(local_devices))]
    sharding = NamedSharding(mesh, P("data"))

    def put(*shards):
        arrays = [jax.device_put(x, device) for x, device in zip(shards, local_devices)]
        return jax.make_array_from_single_device_arrays((mesh.size * len(shards[0]),) + shards[0].shape[1:],
                                                        sharding, arrays)

    placed = {key: jax.tree.map(put, *[b[key] for b in blocks]) for key in blocks[0]}
    return TrainImages(lens=Lens.of(cameras.intrinsics), ndc=bool(config.forward_facing), **placed)
