"""The training step: losses, optimizer, and one jitted, sharded update over device-resident rays."""

from typing import NamedTuple, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from mipnerf import stepfun
from mipnerf.camera import Rays
from mipnerf.checkpoints import Checkpointer, checkpoint_dir
from mipnerf.errors import ConfigError
from mipnerf.metrics import psnr_from_mse


class RayData(NamedTuple):
    """Training rays flattened over images and pixels, resident on the device. Leading shape [N]."""

    rays: Rays
    rgb: jnp.ndarray  # [N, 3]


@flax.struct.dataclass
class TrainState:
    """Everything a training run carries from step to step; a checkpoint holds exactly this.

    step: number of completed steps. nonfinite_step: the first step whose loss was not finite
    (its update was skipped), or -1.
    """

    step: jnp.ndarray
    params: flax.core.FrozenDict
    opt_state: optax.OptState
    nonfinite_step: jnp.ndarray


def lr_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
    """Log-linear decay from lr_init to lr_final over max_steps, eased in over lr_delay_steps (mip-NeRF)."""

    def schedule(step):
        frac = jnp.clip(step / config.max_steps, 0, 1)
        lr = jnp.exp(jnp.log(config.lr_init) * (1 - frac) + jnp.log(config.lr_final) * frac)
        if config.lr_delay_steps > 0:
            ease = jnp.sin(0.5 * jnp.pi * jnp.clip(step / config.lr_delay_steps, 0, 1))
            lr = lr * (config.lr_delay_mult + (1 - config.lr_delay_mult) * ease)
        return lr

    return schedule


def zero_nonfinite() -> optax.GradientTransformation:
    """Replaces non-finite gradient entries with 0 so that one bad ray cannot poison the update."""

    def update(updates, state, params=None):
        return jax.tree.map(lambda g: jnp.where(jnp.isfinite(g), g, 0.0), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(config: ml_collections.ConfigDict, params) -> optax.GradientTransformation:
    """Adam with the config's schedule; each MLP's gradient clipped by its own global norm."""
    clip = optax.identity()
    if config.grad_max_norm > 0:
        top = params["params"]
        labels = {"params": {name: name for name in top}}
        clip = optax.multi_transform({name: optax.clip_by_global_norm(config.grad_max_norm) for name in top}, labels)
    adam = optax.adam(lr_schedule(config), b1=config.adam_beta1, b2=config.adam_beta2, eps=config.adam_eps)
    return optax.chain(zero_nonfinite(), clip, adam)


def data_loss(rgb, target, config) -> jnp.ndarray:
    """Mean reconstruction loss: squared error, or Charbonnier sqrt(err^2 + pad^2)."""
    if config.data_loss == "charbonnier":
        return jnp.mean(jnp.sqrt((rgb - target) ** 2 + config.charbonnier_padding**2))
    return jnp.mean((rgb - target) ** 2)


def compute_losses(rounds, rgb, target, config):
    """Every loss term of a batch.

    Args:
      rounds: the model's list of `Round`s, the NeRF round last.
      rgb, target: [B, 3] rendered and true colours.

    Returns:
      dict with "loss" (the weighted total), "data", "interlevel", "distortion", "mse".
    """
    nerf = rounds[-1]
    interlevel = sum(jnp.mean(stepfun.interlevel_loss(nerf.s, nerf.weights, r.s, r.weights)) for r in rounds[:-1])
    distortion = jnp.mean(stepfun.distortion_loss(nerf.s, nerf.weights))
    data = data_loss(rgb, target, config)
    total = data + config.interlevel_loss_mult * interlevel + config.distortion_loss_mult * distortion
    return {"loss": total, "data": data, "interlevel": jnp.asarray(interlevel, jnp.float32),
            "distortion": distortion, "mse": jnp.mean((rgb - target) ** 2)}


def make_mesh() -> Mesh:
    """A 1-D mesh over every device, with the single axis "data"."""
    return Mesh(np.array(jax.devices()), ("data",))


def check_batch_divides(batch_size: int, mesh: Mesh) -> None:
    if batch_size % mesh.size:
        raise ConfigError(f"config.batch_size={batch_size}: expected a multiple of the number of devices ({mesh.size})")


def background_color(config) -> jnp.ndarray:
    return jnp.ones(3) if config.white_background else jnp.zeros(3)


def create_train_state(config, model: nn.Module, mesh: Mesh):
    """Initialises parameters and optimizer state, replicated over the mesh.

    Returns:
      (TrainState, optax.GradientTransformation).
    """
    dummy = Rays(*(jnp.zeros((1, 3 if i < 3 else 1)) for i in range(6)))
    dummy = dummy._replace(near=dummy.near + config.near, far=dummy.far + config.far,
                           directions=dummy.directions.at[:, 2].set(-1.0), viewdirs=dummy.viewdirs.at[:, 2].set(-1.0))
    init_key, sample_key = jax.random.split(jax.random.PRNGKey(config.seed))
    params = model.init(init_key, sample_key, dummy, 0.0, background_color(config))
    tx = make_optimizer(config, params)
    state = TrainState(step=jnp.array(0, jnp.int32), params=params, opt_state=tx.init(params),
                       nonfinite_step=jnp.array(-1, jnp.int32))
    return jax.device_put(state, NamedSharding(mesh, P())), tx


def restore_train_state(config, model: nn.Module, mesh: Mesh, step: Optional[int] = None) -> TrainState:
    """The train state of checkpoint `step` (default: the latest) of the run in `config.exp_dir`.

    Raises `CheckpointError`, naming the folder searched, when there is no such checkpoint.
    """
    state, _ = create_train_state(config, model, mesh)
    ckpt = Checkpointer(checkpoint_dir(config.exp_dir), create=False)
    try:
        return ckpt.restore(state, step)
    finally:
        ckpt.close()


def make_train_step(config, model: nn.Module, tx: optax.GradientTransformation, mesh: Mesh):
    """The jitted training step `(state, data) -> (state, stats)`; `state` is donated.

    Each step draws `config.batch_size` rays at random from `data` (a `RayData` resident on the
    devices) inside the jitted function, shards the batch over the mesh's "data" axis, and
    renders, differentiates and updates. Randomness comes from the seed and the step number
    alone, so a resumed run repeats an uninterrupted one.
    """
    check_batch_divides(config.batch_size, mesh)
    base_key = jax.random.PRNGKey(config.seed)
    batch_sharding = NamedSharding(mesh, P("data"))
    background = background_color(config)

    def train_step(state: TrainState, data: RayData):
        key = jax.random.fold_in(base_key, state.step)
        batch_key, model_key = jax.random.split(key)
        num_rays = data.rgb.shape[0]
        idx = jax.random.randint(batch_key, (config.batch_size,), 0, num_rays)
        idx = jax.lax.with_sharding_constraint(idx, batch_sharding)
        batch = jax.tree.map(lambda x: x[idx], data)
        train_frac = state.step / config.max_steps

        def loss_fn(params):
            out, rounds = model.apply(params, model_key, batch.rays, train_frac, background)
            losses = compute_losses(rounds, out.rgb, batch.rgb, config)
            return losses["loss"], losses

        grads, losses = jax.grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # A non-finite loss skips the update and is remembered, so that it never reaches a checkpoint.
        ok = jnp.isfinite(losses["loss"])
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
        nonfinite_step = jnp.where((state.nonfinite_step < 0) & ~ok, state.step + 1, state.nonfinite_step)
        new_state = TrainState(step=state.step + 1, params=keep(params, state.params),
                               opt_state=keep(opt_state, state.opt_state), nonfinite_step=nonfinite_step)
        stats = dict(losses, psnr=psnr_from_mse(losses["mse"]), lr=lr_schedule(config)(state.step))
        return new_state, stats

    return jax.jit(train_step, donate_argnums=(0,))


def put_ray_data(rays: Rays, rgb: np.ndarray, mesh: Mesh) -> RayData:
    """Flattens rays and colours of every pixel and places them on every device of the mesh.

    Args:
      rays: `Rays` with fields [..., C]; rgb: [..., 3].
    """
    flat = lambda x: np.reshape(x, (-1, x.shape[-1]))
    data = RayData(rays=Rays(*(flat(x) for x in rays)), rgb=flat(rgb))
    return jax.device_put(data, NamedSharding(mesh, P()))
