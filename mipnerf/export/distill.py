"""A trained NeRF distilled into 3D Gaussians that render in real time (`export.py --config.export=splats`).

The NeRF is the prior and the teacher, as in RadSplat (Niemeyer et al. 2024):
- Start: each training pixel's expected-depth point where the render is opaque, with its colour;
  a Gaussian as wide as the pixel's footprint at that depth (spread over the pixels it stands
  for), as opaque as the render.
- Fit: the splats are rendered by the tile rasteriser (`render.rasterize`) and fitted to the NeRF's
  renders of the training cameras and of cameras between them (views the photos lack), and to the
  training photos, one view a step, with 3DGS's loss (0.8 L1 + 0.2 D-SSIM), its per-parameter
  learning rates and Adam, its adaptive densification (clone the small and split the large
  Gaussians whose image-space gradient is large; drop the transparent), the spherical-harmonic
  bands turned on one at a time.
- Prune: by each Gaussian's largest blending weight at any pixel of any training view
  (RadSplat's importance), once densification ends and again at the end.

The splats live in arrays of a fixed capacity, `export_splats` (the budget): free slots are
transparent and culled, densification fills them, pruning frees them; so every step has the same
shapes and compiles once per binning plan.
"""

import json
import pathlib
from typing import NamedTuple

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.spatial.transform as sst
import tqdm

from mipnerf import datasets
from mipnerf.cameras import camera
from mipnerf.errors import Interrupted, MipNerfError
from mipnerf.export import point_cloud
from mipnerf.model import mipnerf360
from mipnerf.render import gaussians, rasterize, rendering, video
from mipnerf.store import stops
from mipnerf.store.checkpoints import Checkpointer
from mipnerf.training import pose_export

# 3DGS's learning rates (its arguments.py); positions scale with the cameras' extent and decay 100x.
LR_MEANS, LR_MEANS_FINAL = 1.6e-4, 1.6e-6
LR_SH_DC, SH_REST_DIVISOR = 2.5e-3, 20.0
LR_OPACITY, LR_SCALES, LR_QUATS = 0.025, 5e-3, 1e-3
SSIM_WEIGHT = 0.2
DENSIFY_EVERY = 100
DENSIFY_GRAD = 2e-4  # mean image-space gradient (normalised device coordinates) that densifies
PERCENT_DENSE = 0.01  # of the extent: larger Gaussians split, smaller ones clone
SPLIT_SHRINK = 1.6
MIN_OPACITY = 0.005
PRUNE_IMPORTANCE = 0.01  # RadSplat: a Gaussian whose weight never reaches this at a training pixel goes
FREE_LOGIT = -30.0  # a free slot: transparent, so culled
INIT_OPACITY = 0.7
INIT_FOOTPRINT = 1.0  # a starting Gaussian's cell, in pixel footprints
MIN_INIT_ACC = 0.5
CHECKPOINTS = "splat_checkpoints"  # under exp_dir/export, while an export runs
FAR_SHELL = 100.0  # content farther than this many extents (the sky) is placed at that distance


class View(NamedTuple):
    """A view the splats are fitted to: cam (`Cameras`, scalar fields) and its target image [H, W, 3] uint8."""

    cam: camera.Cameras
    target: np.ndarray


def between_cameras(camtoworlds: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """[count, 4, 4] cameras between the given ones: each a random blend of a camera and its nearest
    neighbour (positions linearly, rotations along the shortest arc)."""
    c2w = np.asarray(camtoworlds, np.float64)[:, :3, :4]
    centres = c2w[:, :, 3]
    out = np.tile(np.eye(4), (count, 1, 1))
    for n in range(count):
        i = rng.integers(len(c2w))
        d = np.linalg.norm(centres - centres[i], axis=-1)
        d[i] = np.inf
        j = int(np.argmin(d))
        t = rng.uniform(0.25, 0.75)
        slerp = sst.Slerp([0, 1], sst.Rotation.from_matrix(c2w[[i, j], :, :3]))
        out[n, :3, :3] = slerp([t]).as_matrix()[0]
        out[n, :3, 3] = (1 - t) * centres[i] + t * centres[j]
    return out


class Teacher(NamedTuple):
    """The NeRF's render of a view, pixels flattened: rgb [HW, 3], depth [HW] (along the ray's
    direction vector), acc [HW], certain [HW] (`point_cloud.depth_is_certain`: one surface, not a
    blend of two)."""

    rgb: np.ndarray
    depth: np.ndarray
    acc: np.ndarray
    certain: np.ndarray


def make_teacher_fn(config, model):
    """A jitted `(params, cameras, pixels [B], lens) -> Teacher` of the pixels of one camera."""
    background = mipnerf360.background_color(config)

    def teach(params, cameras: camera.Cameras, pixels, lens: camera.Lens):
        rays = camera.pixel_rays(cameras, pixels, lens, config.forward_facing)
        out, rounds = model.apply(params, None, rays, 1.0, background)
        return Teacher(out.rgb, out.depth, out.acc, point_cloud.depth_is_certain(rounds[-1], out.depth))

    return jax.jit(teach, static_argnames="lens")


def teacher_views(renderer: rendering.Renderer, teach_fn, camtoworlds, intrinsics, height, width, config,
                  desc) -> tuple[list, list]:
    """Each camera (`Cameras`, scalar fields) and the NeRF's `Teacher` render of it."""
    cams = [rendering.view_camera(c, intrinsics, n, width, height, *rendering.ray_bounds(config))
            for n, c in enumerate(camtoworlds)]
    lens = camera.Lens.of(intrinsics)
    renders = [rendering.concat_chunks(rendering.image_chunks(teach_fn, renderer.params, cam, lens,
                                                              config.render_chunk, renderer.mesh), height * width)
               for cam in tqdm.tqdm(cams, desc=desc, unit="view")]
    return cams, renders


def initial_splats(cams: list, images: list, capacity: int, extent: float, degree: int,
                   rng: np.random.Generator) -> tuple[gaussians.Splats, np.ndarray]:
    """Splats from the teacher's renders of the training views (see the module docstring).

    Returns:
      (splats with `capacity` slots, active [capacity] bool); at most half the slots are filled.
    """
    points, colors, acc, radii = [], [], [], []
    for cam, image in zip(cams, images):
        h, w = int(cam.height), int(cam.width)
        rays = camera.generate_rays(np.asarray(cam.camtoworlds)[None], jax.tree.map(lambda x: np.asarray(x)[None],
                                                                                     cam.intrinsics), h, w, 0.0, 1.0)
        rays = jax.tree.map(lambda x: np.asarray(x[0]).reshape(h * w, -1), rays)
        depth = image.depth[:, None]
        length = np.linalg.norm(rays.directions, axis=-1, keepdims=True)
        sky = depth[:, 0] * length[:, 0] > FAR_SHELL * extent
        depth = np.minimum(depth, FAR_SHELL * extent / length)  # the sky on a far shell
        keep = (image.acc > MIN_INIT_ACC) & (image.certain | sky)
        points.append((rays.origins + depth * rays.directions)[keep])
        colors.append(image.rgb[keep])
        acc.append(image.acc[keep])
        radii.append((depth * rays.radii)[keep, 0])
    points, colors, acc, radii = map(np.concatenate, (points, colors, acc, radii))
    if len(points) == 0:
        raise MipNerfError("the NeRF renders no opaque pixel in any training view: nothing to start splats from")
    # One point per cell of a grid whose cells are as wide as two pixel footprints at the point's
    # depth (an octree level per footprint octave): every view saw the same surfaces, and their
    # points would pile up in layers that all blend.
    level = np.ceil(np.log2(2 * INIT_FOOTPRINT * radii))
    cells = np.concatenate([level[:, None], np.floor(points / 2.0 ** level[:, None])], axis=-1)
    _, first = np.unique(cells, axis=0, return_index=True)
    count = min(len(first), capacity // 2)
    chosen = rng.choice(first, count, replace=False)
    scale = 2.0 ** level[chosen] / 2
    k = (degree + 1) ** 2
    sh = np.zeros((capacity, k, 3), np.float32)
    sh[:count, 0] = np.asarray(gaussians.rgb_to_sh_dc(colors[chosen]))
    splats = gaussians.Splats(
        means=pad(points[chosen], capacity), log_scales=pad(np.log(scale)[:, None].repeat(3, 1), capacity),
        quats=pad(np.tile([1.0, 0.0, 0.0, 0.0], (count, 1)), capacity, fill=[1.0, 0.0, 0.0, 0.0]),
        opacity_logits=pad(np.asarray(gaussians.logit(np.clip(INIT_OPACITY * acc[chosen], 0.01, 0.99))), capacity,
                           fill=FREE_LOGIT),
        sh=sh)
    return splats, np.arange(capacity) < count


def pad(x, capacity: int, fill=0.0) -> np.ndarray:
    """x [n, ...] as float32 [capacity, ...], the rest `fill`."""
    x = np.asarray(x, np.float32)
    out = np.empty((capacity,) + x.shape[1:], np.float32)
    out[:] = fill
    out[:len(x)] = x
    return out


def learning_rates(degree: int, extent: float, progress):
    """Per-field learning rates (a `Splats` of scalars and arrays) at `progress` in [0, 1]."""
    means = extent * LR_MEANS * (LR_MEANS_FINAL / LR_MEANS) ** progress
    sh = jnp.full(((degree + 1) ** 2, 1), LR_SH_DC / SH_REST_DIVISOR).at[0].set(LR_SH_DC)
    return gaussians.Splats(means, LR_SCALES, LR_QUATS, LR_OPACITY, sh)


def loss_of(rgb, target):
    """3DGS's image loss: 0.8 L1 + 0.2 (1 - SSIM)."""
    l1 = jnp.mean(jnp.abs(rgb - target))
    return (1 - SSIM_WEIGHT) * l1 + SSIM_WEIGHT * (1 - dm_pix.ssim(rgb, target))


ADAM = optax.scale_by_adam(eps=1e-15)


def make_step(width: int, height: int, extent: float, degree: int):
    """The jitted step `(splats, adam, active, cam, target, background, progress, capacity, sh_degree)
    -> (splats, adam, loss, grad2d [N], importance [N], overflow)`."""

    def step(splats, adam, active, cam, target, background, progress, capacity, sh_degree):
        def loss_fn(s, offset):
            raster = rasterize.rasterize(s, cam, width, height, background, capacity, sh_degree, offset)
            return loss_of(raster.rgb, target.astype(jnp.float32) / 255.0), raster

        offset = jnp.zeros((splats.means.shape[0], 2))
        (loss, raster), (grads, grad2d) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(splats, offset)
        updates, new_adam = ADAM.update(grads, adam)
        rates = learning_rates(degree, extent, progress)
        new = jax.tree.map(lambda x, u, lr: x - lr * u, splats, updates, rates)
        new = new._replace(opacity_logits=jnp.where(active, new.opacity_logits, FREE_LOGIT))
        # A non-finite loss skips the update (as training does), so it never reaches a checkpoint.
        ok = jnp.isfinite(loss)
        splats, adam = jax.tree.map(lambda a, b: jnp.where(ok, a, b), (new, new_adam), (splats, adam))
        # The gradient with respect to normalised device coordinates, as 3DGS thresholds it.
        ndc = jnp.linalg.norm(grad2d * jnp.array([width / 2, height / 2]), axis=-1)
        return splats, adam, loss, ndc, raster.importance, raster.overflow

    return jax.jit(step, static_argnames=("capacity", "sh_degree"), donate_argnums=(0, 1))


class Stats(NamedTuple):
    """Densification's statistics since it last ran: grad [N] summed image-space gradient norms, seen [N] views."""

    grad: np.ndarray
    seen: np.ndarray


def densify(splats: gaussians.Splats, active: np.ndarray, stats: Stats, extent: float,
            rng: np.random.Generator) -> tuple[gaussians.Splats, np.ndarray, np.ndarray]:
    """3DGS's adaptive density control on the host, into free slots: Gaussians whose mean gradient
    exceeds `DENSIFY_GRAD` are cloned (small) or split in two smaller ones drawn from themselves
    (large), the largest gradients first while slots last; then the nearly transparent are freed.

    Returns:
      (splats, active, changed [N] bool: slots whose optimiser moments must restart).
    """
    s = gaussians.Splats(*(np.array(x) for x in splats))
    active = active.copy()
    mean_grad = np.where(stats.seen > 0, stats.grad / np.maximum(stats.seen, 1), 0.0)
    grow = np.flatnonzero(active & (mean_grad >= DENSIFY_GRAD))
    grow = grow[np.argsort(-mean_grad[grow])]
    free = np.flatnonzero(~active)
    grow = grow[:len(free)]
    targets = free[:len(grow)]
    big = np.exp(s.log_scales[grow]).max(axis=-1) > PERCENT_DENSE * extent
    for x in s:
        x[targets] = x[grow]
    for i in (grow[big], targets[big]):  # a split: both halves drawn from the original, shrunk
        rot = np.asarray(gaussians.quat_to_rotmat(s.quats[i]))
        offsets = rng.normal(size=(len(i), 3)) * np.exp(s.log_scales[i])
        s.means[i] += np.einsum("nij,nj->ni", rot, offsets)
    s.log_scales[grow[big]] -= np.log(SPLIT_SHRINK)
    s.log_scales[targets[big]] -= np.log(SPLIT_SHRINK)
    active[targets] = True
    changed = np.zeros_like(active)
    changed[grow] = changed[targets] = True
    transparent = active & (np.asarray(gaussians.opacities(s.opacity_logits)) < MIN_OPACITY)
    return free_slots(s, active, transparent) + (changed | transparent,)


def free_slots(s: gaussians.Splats, active: np.ndarray, drop: np.ndarray) -> tuple:
    """(splats, active) with the `drop` slots made free."""
    s = gaussians.Splats(*(np.array(x) for x in s))
    s.opacity_logits[drop] = FREE_LOGIT
    return s, active & ~drop


def restart_moments(adam, changed: np.ndarray):
    """Adam's state with the moments of the `changed` slots zeroed."""
    keep = jnp.asarray(~changed)
    zero = lambda x: x * keep.reshape((-1,) + (1,) * (x.ndim - 1))
    return adam._replace(mu=jax.tree.map(zero, adam.mu), nu=jax.tree.map(zero, adam.nu))


def importance(splats, views: list, width: int, height: int, background) -> np.ndarray:
    """[N] each Gaussian's largest blending weight at any pixel of `views` (RadSplat's pruning score)."""
    score = np.zeros(splats.means.shape[0], np.float32)
    for view in views:
        score = np.maximum(score, np.asarray(rasterize.render(splats, view.cam, width, height, background).importance))
    return score


def checkpoint_state(step: int, splats, adam, active, stats: Stats) -> dict:
    return {"step": np.asarray(step, np.int32), "splats": dict(zip(gaussians.Splats._fields, splats)),
            "adam": {"count": adam.count, "mu": dict(zip(gaussians.Splats._fields, adam.mu)),
                     "nu": dict(zip(gaussians.Splats._fields, adam.nu))},
            "active": active, "grad": stats.grad, "seen": stats.seen}


def from_checkpoint(state: dict):
    as_splats = lambda d: gaussians.Splats(*(jnp.asarray(d[f]) for f in gaussians.Splats._fields))
    adam = optax.ScaleByAdamState(count=jnp.asarray(state["adam"]["count"]), mu=as_splats(state["adam"]["mu"]),
                                  nu=as_splats(state["adam"]["nu"]))
    return (int(state["step"]), as_splats(state["splats"]), adam, np.asarray(state["active"], bool),
            Stats(np.asarray(state["grad"]), np.asarray(state["seen"])))


def fit(views: list, splats: gaussians.Splats, active: np.ndarray, config, extent: float, background,
        ckpt_dir: pathlib.Path, log=print) -> tuple[gaussians.Splats, np.ndarray]:
    """Fits the splats to `views` for `config.splat_steps` steps (see the module docstring), resuming
    from the newest checkpoint in `ckpt_dir` (every `config.checkpoint_every` steps).

    Returns:
      (splats, active) after the last pruning.

    Raises:
      Interrupted: on Ctrl-C or SIGTERM, after the step in flight, once its checkpoint is saved.
    """
    steps = config.splat_steps
    splats = jax.tree.map(jnp.asarray, splats)
    adam = ADAM.init(splats)
    stats = Stats(np.zeros(len(active)), np.zeros(len(active)))
    ckpt = Checkpointer(ckpt_dir)
    start = 0
    if ckpt.latest_step() is not None:
        start, splats, adam, active, stats = from_checkpoint(
            ckpt.restore(checkpoint_state(0, splats, adam, active, stats), log=log))
        log(f"splats: resumed from step {start} of {ckpt_dir}")
    background = jnp.asarray(background, jnp.float32)
    bar = tqdm.tqdm(range(start, steps), desc="splats", unit="step", initial=start, total=steps)
    stop = stops.StopRequests()
    with stop.installed():
        splats, active, skipped, step = _fit_steps(bar, views, splats, adam, active, stats, config, extent,
                                                   background, ckpt, stop)
    ckpt.close()
    if stop.requested is not None:
        raise Interrupted(f"{stop.name}: saved the splats' checkpoint at step {step + 1} of {steps} in {ckpt_dir}; "
                          "run the same command to resume", stop.requested)
    if skipped:
        log(f"splats: {skipped} steps had a non-finite loss and were skipped")
    return gaussians.Splats(*(np.asarray(x) for x in splats)), active


def _fit_steps(bar, views, splats, adam, active, stats, config, extent, background, ckpt, stop):
    """`fit`'s steps over `bar` until the last or a stop request: (splats, active, how many steps had
    a non-finite loss, the last step taken)."""
    height, width = views[0].target.shape[:2]
    degree = splats.sh_degree
    steps = config.splat_steps
    densify_until = int(0.6 * steps)
    step_fn = make_step(width, height, extent, degree)
    capacity, skipped, step = None, 0, bar.n - 1
    for step in bar:
        rng = np.random.default_rng([config.seed, step])  # each step its own draws: a resumed fit is the same
        view = views[rng.integers(len(views))]
        sh_degree = min(degree, step // max(1, config.splat_sh_every))
        need = rasterize.plan(splats, view.cam, width, height)
        capacity = need if capacity is None else rasterize.Plan(max(capacity.pairs, need.pairs),
                                                                 max(capacity.per_tile, need.per_tile), need.tile)
        splats, adam, loss, grad2d, seen, overflow = step_fn(splats, adam, jnp.asarray(active), view.cam,
                                                              view.target, background, step / steps, capacity,
                                                              sh_degree)
        loss = float(loss)
        skipped += not np.isfinite(loss)
        grad2d = np.nan_to_num(np.asarray(grad2d))
        if step < densify_until:
            seen = np.asarray(seen) > 0
            stats = Stats(stats.grad + np.where(seen, grad2d, 0.0), stats.seen + seen)
            if step % DENSIFY_EVERY == DENSIFY_EVERY - 1 and step > DENSIFY_EVERY:
                splats, active, changed = densify(splats, active, stats, extent, rng)
                adam = restart_moments(adam, changed)
                splats = jax.tree.map(jnp.asarray, splats)
                stats = Stats(np.zeros(len(active)), np.zeros(len(active)))
        if step + 1 in (densify_until, steps):
            score = importance(splats, views, width, height, background)
            splats, active = free_slots(splats, active, active & (score < PRUNE_IMPORTANCE))
            adam = restart_moments(adam, ~active)
            splats = jax.tree.map(jnp.asarray, splats)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss:.4f}", splats=f"{int(active.sum()):,}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == steps or stop.requested is not None:
            ckpt.save(step + 1, checkpoint_state(step + 1, splats, adam, active, stats))
        if stop.requested is not None:
            break
    return splats, active, skipped, step


def refined_camtoworlds(train: datasets.Split, exp_dir) -> np.ndarray:
    """[N, 4, 4] the training cameras as the run refined them (`refined_cameras.json`, by file name),
    else as loaded."""
    path = pathlib.Path(exp_dir) / pose_export.CAMERAS_FILE
    c2w = np.array(train.camtoworlds, np.float64)
    if path.exists():
        refined = {f["file"]: np.asarray(f["camtoworld_model"]) for f in json.loads(path.read_text())["frames"]}
        for n, f in enumerate(train.files):
            c2w[n, :3, :4] = refined.get(pathlib.Path(f).name, c2w[n])[:3, :4]
    return c2w


def distil(renderer: rendering.Renderer, train: datasets.Split, config, out_dir: pathlib.Path,
           log=print) -> gaussians.Splats:
    """The run's splats in the model's frame: the teacher's views rendered, the splats started from
    them and fitted (`fit`, checkpoints in `out_dir/CHECKPOINTS`, from which an interrupted export
    resumes); only the kept ones."""
    rng = np.random.default_rng(config.seed)
    c2w = refined_camtoworlds(train, config.exp_dir)
    centres = c2w[:, :3, 3]
    extent = 1.1 * float(np.max(np.linalg.norm(centres - centres.mean(axis=0), axis=-1)))
    h, w = train.height, train.width
    teach_fn = make_teacher_fn(config, renderer.model)
    cams, images = teacher_views(renderer, teach_fn, c2w, train.intrinsics, h, w, config,
                                 "splats: NeRF at training cameras")
    splats, active = initial_splats(cams, images, config.export_splats, extent, config.splat_sh_degree, rng)
    log(f"splats: {int(active.sum()):,} started from the NeRF's training views (budget {config.export_splats:,})")
    views = [View(c, train.images[n]) for n, c in enumerate(cams)]
    views += [View(c, video.to_uint8(image.rgb.reshape(h, w, 3))) for c, image in zip(cams, images)]
    extra = int(round(config.splat_extra_views * len(c2w)))
    if extra:
        between = between_cameras(c2w, extra, rng)
        one = train.intrinsics.take(0)
        more, renders = teacher_views(renderer, teach_fn, between, one, h, w, config,
                                      "splats: NeRF between training cameras")
        views += [View(c, video.to_uint8(image.rgb.reshape(h, w, 3))) for c, image in zip(more, renders)]
    background = np.asarray(mipnerf360.background_color(config))
    splats, active = fit(views, splats, active, config, extent, background, out_dir / CHECKPOINTS, log)
    return splats.take(active)
