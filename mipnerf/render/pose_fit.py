"""Eval with test-pose optimisation: each test camera's pose refined against its own image, with
the model frozen (`config.eval_pose_steps`, used by eval.py when `config.pose_refine` is on).

A model trained with pose refinement keeps its refined training cameras in the frame of the
loaded ones (`pose_refine.remove_common_motion`), but the test poses carry the capture's own
pose error, which rendering them as given charges to the model. The
published remedy (BARF, nerfstudio's "eval with pose optimisation") is to fit each test camera's
pose correction (`pose_refine`'s 6 numbers) to its image before scoring, with the model's
parameters fixed. Both figures are then reported: as given, and with the test poses optimised.

Each view takes `eval_pose_steps` Adam steps on the mean squared error of `batch_size` pixels
drawn uniformly from its kept pixels, in float32, with the learning rate decaying
log-linearly from `pose_lr_init` to a tenth of it. Only the pose is fitted: focal lengths,
principal point and distortion stay as given.
"""

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


def make_refine_fn(config, model):
    """A jitted `(params, cameras, colors [H*W, 3], kept [H*W] int32, count, key, lens) -> [6]`: the
    pose correction (as `pose_refine.apply` takes it) that fits one camera (`camera.Cameras` with
    scalar fields) to its image `colors` (float32 in [0, 1], row-major), over its kept pixels: the
    first `count` entries of `kept` (row-major indices; the rest is padding); `lens` is static."""
    background = mipnerf360.background_color(config)
    steps, batch = config.eval_pose_steps, config.batch_size
    tx = optimizer.make_test_pose_optimizer(config, LR_FINAL_FRACTION)

    def loss(correction, params, cameras, colors, pixels, lens):
        c2w = pose_refine.apply(correction, cameras.camtoworlds)
        rays = camera.pixel_rays(cameras._replace(camtoworlds=c2w), pixels, lens, config.forward_facing)
        out, _ = model.apply(params, None, rays, 1.0, background)
        return jnp.mean((out.rgb - colors[pixels]) ** 2)

    def refine(params, cameras, colors, kept, count, key, lens):
        def step(carry, k):
            correction, opt_state = carry
            pixels = kept[jax.random.randint(k, (batch,), 0, count)]  # uniform over the kept pixels
            grads = jax.grad(loss)(correction, params, cameras, colors, pixels, lens)
            updates, opt_state = tx.update(grads, opt_state, correction)
            return (optax.apply_updates(correction, updates), opt_state), None

        start = jnp.zeros(pose_refine.SIZE, jnp.float32)
        (correction, _), _ = jax.lax.scan(step, (start, tx.init(start)), jax.random.split(key, steps))
        return correction

    return jax.jit(refine, static_argnames="lens")


def optimised_poses(refine_fn, params, split, config) -> np.ndarray:
    """The test-pose corrections of every view of `split`: [N, 6] float32 (numpy).

    Views are fitted one at a time with a fixed seed per view (the view's index), so the figures
    repeat from run to run.
    """
    lens = camera.Lens.of(split.intrinsics)
    out = []
    for n, c2w in enumerate(tqdm.tqdm(split.camtoworlds, desc="fit test poses", unit="view")):
        cameras = rendering.view_camera(c2w, split.intrinsics, n, split.width, split.height, config.near, config.far)
        mask = split.mask(n)
        num = split.height * split.width
        kept = np.arange(num, dtype=np.int32) if mask is None else np.flatnonzero(np.asarray(mask)).astype(np.int32)
        count = max(len(kept), 1)
        kept = np.resize(kept, num) if len(kept) else np.zeros(num, np.int32)  # one shape for every view
        colors = np.asarray(split.colors(n), np.float32).reshape(-1, 3)
        out.append(np.asarray(refine_fn(params, cameras, colors, kept, np.int32(count), jax.random.PRNGKey(n), lens)))
    return np.stack(out) if out else np.zeros((0, pose_refine.SIZE), np.float32)
