"""The optimizers: the model's, the training cameras' pose corrections' and eval's test-pose
fitting's, from the same pieces (non-finite gradients zeroed, log-linear learning rates, Adam).

The model follows mip-NeRF's schedule: log-linear decay from lr_init to lr_final over max_steps,
eased in over lr_delay_steps. The pose corrections (`pose_refine`) are frozen for
pose_warmup_steps, then decay log-linearly from pose_lr_init to pose_lr_final, with Adam's
epsilon at 1e-15 since the gradients of a pose are small (1e-8 would shrink their steps;
nerfstudio's is 1e-15 too).
"""

import jax
import jax.numpy as jnp
import ml_collections
import optax

POSE_ADAM_EPS = 1e-15  # Adam's epsilon for poses, whose gradients are small


def log_linear(start: float, end: float, steps, step) -> jnp.ndarray:
    """The learning rate at `step`: log-linear from `start` at 0 to `end` at `steps` (and after)."""
    frac = jnp.clip(step / steps, 0, 1)
    return jnp.exp(jnp.log(start) * (1 - frac) + jnp.log(end) * frac)


def zero_nonfinite() -> optax.GradientTransformation:
    """Replaces non-finite gradient entries with 0 so that one bad ray cannot poison the update."""

    def update(updates, state, params=None):
        return jax.tree.map(lambda g: jnp.where(jnp.isfinite(g), g, 0.0), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def lr_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
    """Log-linear decay from lr_init to lr_final over max_steps, eased in over lr_delay_steps (mip-NeRF)."""

    def schedule(step):
        lr = log_linear(config.lr_init, config.lr_final, config.max_steps, step)
        if config.lr_delay_steps > 0:
            ease = jnp.sin(0.5 * jnp.pi * jnp.clip(step / config.lr_delay_steps, 0, 1))
            lr = lr * (config.lr_delay_mult + (1 - config.lr_delay_mult) * ease)
        return lr

    return schedule


def make_optimizer(config: ml_collections.ConfigDict, params) -> optax.GradientTransformation:
    """The model's: Adam with the config's schedule; each field's gradient clipped by its own global norm.

    The optimizer state has the same structure whatever `grad_max_norm` is (0: no clipping).
    """
    top = params["params"]
    labels = {"params": {name: name for name in top}}
    per_field = (lambda: optax.clip_by_global_norm(config.grad_max_norm)) if config.grad_max_norm > 0 else optax.identity
    clip = optax.multi_transform({name: per_field() for name in top}, labels)
    adam = optax.adam(lr_schedule(config), b1=config.adam_beta1, b2=config.adam_beta2, eps=config.adam_eps)
    return optax.chain(zero_nonfinite(), clip, adam)


def pose_lr_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
    """0 until pose_warmup_steps, then log-linear from pose_lr_init to pose_lr_final at max_steps."""

    def schedule(step):
        span = max(config.max_steps - config.pose_warmup_steps, 1)
        lr = log_linear(config.pose_lr_init, config.pose_lr_final, span, step - config.pose_warmup_steps)
        return jnp.where(step < config.pose_warmup_steps, 0.0, lr)

    return schedule


def make_pose_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """The training cameras' corrections': AdamW with the pose schedule and weight decay towards zero
    (the loaded pose). The decay is decoupled (added to the update and scaled by the learning rate),
    so it too is frozen during the warm-up. The betas are the model's."""
    adam = optax.adamw(pose_lr_schedule(config), b1=config.adam_beta1, b2=config.adam_beta2, eps=POSE_ADAM_EPS,
                       weight_decay=config.pose_decay)
    return optax.chain(zero_nonfinite(), adam)


def make_test_pose_optimizer(config: ml_collections.ConfigDict, final_fraction: float) -> optax.GradientTransformation:
    """Eval's fit of one test camera's pose: Adam over `eval_pose_steps`, log-linear from pose_lr_init
    to `final_fraction` of it."""
    steps = config.eval_pose_steps
    schedule = lambda step: log_linear(config.pose_lr_init, config.pose_lr_init * final_fraction, steps, step)
    return optax.chain(zero_nonfinite(), optax.adam(schedule, eps=POSE_ADAM_EPS))
