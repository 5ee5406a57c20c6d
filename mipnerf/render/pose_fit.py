"""Eval with test-pose optimisation: each test camera's pose refined against its own image, with
the model frozen (`config.eval_pose_steps`, used by eval.py when `config.pose_refine` is on).

A model trained with pose refinement keeps its refined training cameras in the frame of the
loaded ones (`pose_refine.remove_common_motion`), but the test poses carry the capture's own
pose error, which rendering them as given charges to the model. The
published remedy (BARF, nerfstudio's "eval with pose optimisation") is to fit each test camera's
pose correction (`pose_refine`'s 6 numbers) to its image before scoring, with the model's
parameters fixed. Both figures are then reported: as given, and with the test poses optimised.

Each view takes `eval_pose_steps` Adam steps on the mean squared error of `eval_pose_batch`
pixels drawn uniformly from its kept pixels (every kept pixel, each step, when the view has no
more), in float32, with the learning rate decaying log-linearly from `pose_lr_init` to a tenth of
it. Only the pose is fitted: focal lengths, principal point and distortion stay as given.

The steps run `CHUNK_STEPS` to a jitted call, so that Ctrl-C or SIGTERM stops eval within a chunk;
once the first view's second chunk has run, the expected time of the whole fit is logged.
"""

import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from mipnerf.cameras import camera, pose_refine
from mipnerf.model import mipnerf360
from mipnerf.render import rendering
from mipnerf.training import optimizer

LR_FINAL_FRACTION = 0.1  # the last step's learning rate, as a fraction of pose_lr_init
CHUNK_STEPS = 10  # fit steps per jitted call: the longest a stop waits


def fit_batch(config, pixels: int) -> int:
    """Pixels per fit step for a view of `pixels` pixels: `eval_pose_batch`, or all of them when fewer."""
    return min(int(config.eval_pose_batch), pixels)


class Refiner(NamedTuple):
    """Eval's pose fit (`make_refiner`): `fit` runs a chunk of steps, `start()` gives the first
    (correction [6] zeros, Adam state)."""

    fit: Callable
    start: Callable


def make_refiner(config, model) -> Refiner:
    """`fit`: a jitted `(params, cameras, colors [P, 3], kept [P] int32, count, correction [6], opt_state,
    keys [n, 2], lens) -> (correction, opt_state)`: `n` fit steps (at most CHUNK_STEPS) of the pose
    correction (as `pose_refine.apply` takes it) of one camera (`camera.Cameras` with scalar fields)
    to its image `colors` (float32 in [0, 1], row-major, P = H * W pixels), over its kept pixels: the
    first `count` entries of `kept` (row-major indices; the rest repeats them). A view of at most
    `eval_pose_batch` pixels is fitted on every kept pixel each step. `lens` is static."""
    background = mipnerf360.background_color(config)
    tx = optimizer.make_test_pose_optimizer(config, LR_FINAL_FRACTION)

    def loss(correction, params, cameras, colors, pixels, weights, lens):
        c2w = pose_refine.apply(correction, cameras.camtoworlds)
        rays = camera.pixel_rays(cameras._replace(camtoworlds=c2w), pixels, lens, config.forward_facing)
        out, _ = model.apply(params, None, rays, 1.0, background)
        err = jnp.sum((out.rgb - colors[pixels]) ** 2, axis=-1)
        return jnp.sum(weights * err) / (3.0 * jnp.sum(weights))

    def refine(params, cameras, colors, kept, count, correction, opt_state, keys, lens):
        batch = fit_batch(config, kept.shape[0])
        whole = batch == kept.shape[0]

        def step(carry, k):
            correction, opt_state = carry
            if whole:  # every kept pixel once: the padding repeats, so it is weighted out
                pixels, weights = kept, (jnp.arange(kept.shape[0]) < count).astype(jnp.float32)
            else:  # uniform over the kept pixels
                pixels = kept[jax.random.randint(k, (batch,), 0, count)]
                weights = jnp.ones(pixels.shape, jnp.float32)
            grads = jax.grad(loss)(correction, params, cameras, colors, pixels, weights, lens)
            updates, opt_state = tx.update(grads, opt_state, correction)
            return (optax.apply_updates(correction, updates), opt_state), None

        (correction, opt_state), _ = jax.lax.scan(step, (correction, opt_state), keys)
        return correction, opt_state

    zeros = jnp.zeros(pose_refine.SIZE, jnp.float32)
    return Refiner(jax.jit(refine, static_argnames="lens"), lambda: (zeros, tx.init(zeros)))


def optimised_poses(refiner: Refiner, params, split, config, log=print) -> np.ndarray:
    """The test-pose corrections of every view of `split`: [N, 6] float32 (numpy).

    Views are fitted one at a time with a fixed seed per view (the view's index), so the figures
    repeat from run to run. Logs the expected time of the fit once it can tell.
    """
    lens = camera.Lens.of(split.intrinsics)
    num = split.height * split.width
    views, steps = len(split.camtoworlds), int(config.eval_pose_steps)
    out, timed = [], None
    for n, c2w in enumerate(tqdm.tqdm(split.camtoworlds, desc="fit test poses", unit="view")):
        cameras = rendering.view_camera(c2w, split.intrinsics, n, split.width, split.height, config.near, config.far)
        mask = split.mask(n)
        kept = np.arange(num, dtype=np.int32) if mask is None else np.flatnonzero(np.asarray(mask)).astype(np.int32)
        count = max(len(kept), 1)
        kept = np.resize(kept, num) if len(kept) else np.zeros(num, np.int32)  # one shape for every view
        colors = np.asarray(split.colors(n), np.float32).reshape(-1, 3)
        keys = jax.random.split(jax.random.PRNGKey(n), steps)
        correction, opt_state = jax.device_put(refiner.start(), _replicated_like(params))
        for c, first in enumerate(range(0, steps, CHUNK_STEPS)):
            began = time.perf_counter()
            correction, opt_state = refiner.fit(params, cameras, colors, kept, np.int32(count), correction, opt_state,
                                              keys[first:first + CHUNK_STEPS], lens)
            correction = jax.block_until_ready(correction)
            if n == 0 and c == 1:  # the first chunk compiled; this one ran at speed
                timed = (time.perf_counter() - began) / CHUNK_STEPS
                log(f"fitting {views} test poses, {steps} steps of {fit_batch(config, num)} pixels each: about "
                    f"{timed * steps:.1f} s a view, {_duration(timed * steps * views)} in all")
        out.append(np.asarray(correction))
    return np.stack(out) if out else np.zeros((0, pose_refine.SIZE), np.float32)


def _replicated_like(params):
    """The sharding that puts a small array on every device that holds `params`, as the fit's outputs
    are placed: so that its second call reuses the first one's compilation."""
    sharding = jax.tree.leaves(params)[0].sharding
    if isinstance(sharding, jax.sharding.NamedSharding):
        return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
    return sharding


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
