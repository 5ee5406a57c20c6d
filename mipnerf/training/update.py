"""The training step: losses, optimizer, and one jitted, sharded update that draws its pixels from
the device-resident training images and casts their rays itself (`train_images`)."""

from typing import NamedTuple, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from mipnerf.cameras import pose_refine
from mipnerf.errors import ConfigError
from mipnerf.metrics import psnr_from_mse
from mipnerf.model import coord, mipnerf360, stepfun
from mipnerf.training import optimizer
from mipnerf.training.train_images import RayData, TrainImages, sample_batch


@flax.struct.dataclass
class TrainState:
    """Everything a training run carries from step to step; a checkpoint holds exactly this.

    step: number of completed steps. nonfinite_step: the first step whose loss was not finite
    (its update was skipped), or -1. poses: [N, 6] float32 corrections of the N training cameras
    (`pose_refine`, indexed as `TrainImages.ids`) and pose_opt_state their optimizer's state;
    both None without pose refinement, so that such a state (and checkpoint) is as it always was.
    """

    step: jnp.ndarray
    params: flax.core.FrozenDict
    opt_state: optax.OptState
    nonfinite_step: jnp.ndarray
    poses: Optional[jnp.ndarray] = None
    pose_opt_state: Optional[optax.OptState] = None


def data_weights(config, lossmult, shape) -> jnp.ndarray:
    """The weight of each ray and channel in the data loss, [B, 3] (`shape`): the per-ray `lossmult`
    [B, 1] with `config.multiscale_loss` (mip-NeRF's multiscale loss, in which a ray of an image
    at 1/2^k resolution weighs 4^k, so that every scale weighs the same), else 1."""
    if lossmult is None or not config.multiscale_loss:
        return jnp.ones(shape, jnp.float32)
    return jnp.broadcast_to(lossmult, shape)


def data_loss(rgb, target, config, lossmult=None, total_weight=None) -> jnp.ndarray:
    """Reconstruction loss: squared error, or Charbonnier sqrt(err^2 + pad^2), as the weighted
    average sum(weights * err) / sum(weights) over rays and channels (weights from `data_weights`).

    total_weight: the sum of the weights over the whole batch when (rgb, target) [B, 3] are one
    of its micro-batches, so that the micro-batches' losses add up to the batch's (default: the
    sum over these rays).
    """
    if config.data_loss == "charbonnier":
        err = jnp.sqrt((rgb - target) ** 2 + config.charbonnier_padding**2)
    else:
        err = (rgb - target) ** 2
    weights = data_weights(config, lossmult, err.shape)
    return jnp.sum(weights * err) / (jnp.sum(weights) if total_weight is None else total_weight)


class BatchTotals(NamedTuple):
    """What the loss terms of a whole batch divide by: its number of rays, and the sum of its
    data-loss weights over rays and channels (see `data_weights`)."""

    rays: int
    data_weight: jnp.ndarray


def batch_totals(batch: RayData, config) -> BatchTotals:
    return BatchTotals(batch.rgb.shape[0], jnp.sum(data_weights(config, batch.lossmult, batch.rgb.shape)))


def interlevel_loss(nerf, proposal, index: int, config) -> jnp.ndarray:
    """[B] the proposal loss of proposal round `index` (a `Round`) against the NeRF round `nerf`:
    mip-NeRF 360's (config.interlevel_loss="outer") or Zip-NeRF's, blurred by the round's
    config.interlevel_blurs ("blurred")."""
    if config.interlevel_loss == "blurred":
        return stepfun.blurred_interlevel_loss(nerf.s, nerf.weights, proposal.s, proposal.weights,
                                               config.interlevel_blurs[index])
    return stepfun.interlevel_loss(nerf.s, nerf.weights, proposal.s, proposal.weights)


def distortion_distance(nerf, config) -> jnp.ndarray:
    """[B, S+1] the distances along the rays the distortion loss measures: the normalised distance
    s (mip-NeRF 360, config.distortion_distance="s"), or Zip-NeRF's power ladder of the metric
    distance ("power_ladder", with config.distortion_power and distortion_premult)."""
    if config.distortion_distance == "power_ladder":
        return coord.power_ladder(nerf.t, config.distortion_power, config.distortion_premult)
    return nerf.s


def compute_losses(rounds, rgb, target, config, lossmult=None, totals: Optional[BatchTotals] = None):
    """Every loss term of a batch, or a micro-batch's share of them.

    Each term is a sum over rays divided by the whole batch's total, so that the terms of a
    batch's micro-batches add up to the batch's averages.

    Args:
      rounds: the model's list of `Round`s, the NeRF round last.
      rgb, target: [B, 3] rendered and true colours.
      lossmult: [B, 1] per-ray weights of the data loss (see `data_weights`), or None.
      totals: the whole batch's `BatchTotals` when these rays are one of its micro-batches
        (default: these rays').

    Returns:
      dict with "loss" (the weighted total), "data", "interlevel", "distortion", "mse".
    """
    nerf = rounds[-1]
    rays = rgb.shape[0] if totals is None else totals.rays
    per_ray_mean = lambda x: jnp.sum(x) / rays
    interlevel = sum(per_ray_mean(interlevel_loss(nerf, r, i, config)) for i, r in enumerate(rounds[:-1]))
    distortion = per_ray_mean(stepfun.distortion_loss(distortion_distance(nerf, config), nerf.weights))
    data = data_loss(rgb, target, config, lossmult, None if totals is None else totals.data_weight)
    total = data + config.interlevel_loss_mult * interlevel + config.distortion_loss_mult * distortion
    return {"loss": total, "data": data, "interlevel": jnp.asarray(interlevel, jnp.float32),
            "distortion": distortion, "mse": per_ray_mean(jnp.mean((rgb - target) ** 2, axis=-1))}


def split_micro_batches(x: jnp.ndarray, grad_accum: int) -> jnp.ndarray:
    """[B, ...] -> [grad_accum, B / grad_accum, ...]: micro-batch m holds rows m, m + grad_accum, ...

    Interleaved rather than contiguous, so that with the batch sharded in contiguous blocks over
    the devices every micro-batch takes the same number of rays from every device's shard, and
    stays sharded evenly with no communication.
    """
    return jnp.swapaxes(x.reshape((-1, grad_accum) + x.shape[1:]), 0, 1)


def check_batch_divides(batch_size: int, mesh: Mesh, grad_accum: int = 1) -> None:
    """Raises ConfigError unless every device gets the same number of rays of every micro-batch."""
    if batch_size % mesh.size:
        raise ConfigError(f"config.batch_size={batch_size}: expected a multiple of the number of devices ({mesh.size})")
    per_device = batch_size // mesh.size
    if per_device % grad_accum:
        raise ConfigError(f"config.grad_accum={grad_accum}: expected a divisor of the rays per device "
                          f"({per_device} = batch_size {batch_size} / {mesh.size} devices)")


def create_train_state(config, model: nn.Module, mesh: Mesh, num_images: Optional[int] = None):
    """Initialises parameters and optimizer state, replicated over the mesh.

    num_images: the number of training cameras, whose pose corrections start at zero; needed
      with `config.pose_refine` only.

    Returns:
      (TrainState, optax.GradientTransformation): the state, and the model's optimizer (the
      poses' is `optimizer.make_pose_optimizer`).
    """
    if config.pose_refine and not num_images:
        raise ConfigError("config.pose_refine=True: expected the number of training cameras to refine")
    init_key, sample_key = jax.random.split(jax.random.PRNGKey(config.seed))
    args = mipnerf360.init_args(config, sample_key)
    # Shapes first, so that the optimizer can be built; then one compiled initialisation, since
    # running `init` op by op dispatches hundreds of small kernels.
    shapes = jax.eval_shape(model.init, init_key, *args)
    tx = optimizer.make_optimizer(config, shapes)

    def init():
        params = model.init(init_key, *args)
        poses = pose_refine.zeros(num_images) if config.pose_refine else None
        pose_opt_state = optimizer.make_pose_optimizer(config).init(poses) if config.pose_refine else None
        return TrainState(step=jnp.array(0, jnp.int32), params=params, opt_state=tx.init(params),
                          nonfinite_step=jnp.array(-1, jnp.int32), poses=poses, pose_opt_state=pose_opt_state)

    return jax.jit(init, out_shardings=NamedSharding(mesh, P()))(), tx


def make_update(config, model: nn.Module, tx: optax.GradientTransformation):
    """The update `(state, batch, key) -> (state, stats)` on a given batch (a `RayData` [B]), unjitted.

    The gradients come from `batch_gradients`, in micro-batches, so that a step needs the
    activations of one micro-batch only; the update and the stats are those of the whole batch.
    With the batch sharded over a mesh and the state replicated, XLA averages the gradients over
    devices. A non-finite loss skips the update and is remembered in `nonfinite_step`.

    With `pose_vjp` (pose refinement: the rays' vector-Jacobian product in the pose corrections,
    [B] ray cotangents -> ([N, 6],)), the gradient of the loss in each micro-batch's rays is
    kept too, and carried back to the corrections, which take a step of their own optimizer.
    """
    schedule = optimizer.lr_schedule(config)
    pose_tx = optimizer.make_pose_optimizer(config) if config.pose_refine else None

    def update(state: TrainState, batch: RayData, key, pose_vjp=None):
        grads, losses, ray_grads = batch_gradients(config, model, state.params, batch, key,
                                                   state.step / config.max_steps, pose_vjp is not None)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # A non-finite loss skips the update and is remembered, so that it never reaches a checkpoint.
        ok = jnp.isfinite(losses["loss"])
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
        nonfinite_step = jnp.where((state.nonfinite_step < 0) & ~ok, state.step + 1, state.nonfinite_step)
        poses, pose_opt_state = state.poses, state.pose_opt_state
        stats = {}
        if pose_vjp is not None:
            (pose_grads,) = pose_vjp(ray_grads)
            pose_updates, pose_opt_state = pose_tx.update(pose_grads, state.pose_opt_state, state.poses)
            poses = keep(optax.apply_updates(state.poses, pose_updates), state.poses)
            pose_opt_state = keep(pose_opt_state, state.pose_opt_state)
            stats["pose_lr"] = optimizer.pose_lr_schedule(config)(state.step)
        new_state = TrainState(step=state.step + 1, params=keep(params, state.params),
                               opt_state=keep(opt_state, state.opt_state), nonfinite_step=nonfinite_step,
                               poses=poses, pose_opt_state=pose_opt_state)
        stats = dict(losses, psnr=psnr_from_mse(losses["mse"]), lr=schedule(state.step), **stats)
        return new_state, stats

    return update


def batch_gradients(config, model: nn.Module, params, batch: RayData, key, train_frac, ray_gradients: bool):
    """The losses of a batch (a `RayData` [B]) and their gradient in `params`, with the fields' own
    weight decay (`mipnerf360.weight_decay`), a term of the parameters alone added once.

    The batch is rendered and differentiated in `config.grad_accum` micro-batches (see
    `split_micro_batches`) whose gradients are summed in a scan. Each ray's sampling jitter comes
    from its own key (`jax.random.split(key, B)`), so that it does not depend on `grad_accum`.

    Returns:
      (gradients, the dict of losses, and with `ray_gradients` the gradient in each ray [B] in the
      batch's order, else None).
    """
    # The data loss divides by the whole batch's weights, which do not depend on the parameters.
    totals = batch_totals(batch, config)
    keys = jax.random.split(key, totals.rays)
    backgrounds = mipnerf360.training_background(config, jax.random.fold_in(key, 1), totals.rays)
    micro_batches = jax.tree.map(lambda x: split_micro_batches(x, config.grad_accum), (batch, keys, backgrounds))

    def micro_loss(params, rays, micro):
        micro_batch, micro_keys, background = micro
        out, rounds = model.apply(params, micro_keys, rays, train_frac, background, micro_batch.image)
        losses = compute_losses(rounds, out.rgb, micro_batch.rgb, config, micro_batch.lossmult, totals)
        return losses["loss"], losses

    def accumulate(grads, micro):
        argnums = (0, 1) if ray_gradients else 0
        micro_grads, losses = jax.grad(micro_loss, argnums=argnums, has_aux=True)(params, micro[0].rays, micro)
        micro_grads, ray_grads = micro_grads if ray_gradients else (micro_grads, None)
        return jax.tree.map(jnp.add, grads, micro_grads), (losses, ray_grads)

    grads, (losses, ray_grads) = jax.lax.scan(accumulate, jax.tree.map(jnp.zeros_like, params), micro_batches)
    losses = jax.tree.map(lambda x: jnp.sum(x, axis=0), losses)
    losses["weight_decay"], decay_grads = jax.value_and_grad(lambda p: mipnerf360.weight_decay(model, p))(params)
    losses["loss"] = losses["loss"] + losses["weight_decay"]
    grads = jax.tree.map(jnp.add, grads, decay_grads)
    if ray_gradients:  # back in the batch's order (undoing `split_micro_batches`)
        ray_grads = jax.tree.map(lambda g: jnp.swapaxes(g, 0, 1).reshape((-1,) + g.shape[2:]), ray_grads)
    return grads, losses, ray_grads


def make_train_step(config, model: nn.Module, tx: optax.GradientTransformation, mesh: Mesh):
    """The jitted training step `(state, images) -> (state, stats)`; `state` is donated.

    Each step draws `config.batch_size` pixels from the device-resident `images` and casts their
    rays (see `sample_batch`), then renders, differentiates and updates, all in one XLA program.
    With pose refinement (`state.poses`) the rays are cast from the corrected training cameras,
    and after each update the corrections lose their common motion (`pose_refine.remove_common_motion`).
    Randomness comes from the seed and the step number alone, so a resumed run repeats an
    uninterrupted one.
    """
    check_batch_divides(config.batch_size, mesh, config.grad_accum)
    base_key = jax.random.PRNGKey(config.seed)
    update = make_update(config, model, tx)

    def train_step(state: TrainState, images: TrainImages):
        batch_key, model_key = jax.random.split(jax.random.fold_in(base_key, state.step))
        if state.poses is None:
            return update(state, sample_batch(images, batch_key, config.batch_size, mesh), model_key)
        # Pose refinement: the rays are cast from the corrected cameras, differentiably in the corrections.
        draw = lambda poses: (lambda b: (b.rays, b))(sample_batch(images, batch_key, config.batch_size, mesh, poses))
        _, pose_vjp, batch = jax.vjp(draw, state.poses, has_aux=True)
        state, stats = update(state, batch, model_key, pose_vjp)
        # The cameras' common motion is the scene's to make: take it out of the corrections.
        camtoworlds = jnp.zeros(state.poses.shape[:1] + (3, 4)).at[images.ids].set(images.cameras.camtoworlds[:, :3])
        basis = pose_refine.common_motion_basis(camtoworlds)
        return state.replace(poses=pose_refine.remove_common_motion(state.poses, basis)), stats

    return jax.jit(train_step, donate_argnums=(0,))


