"""The optimizers' shared pieces: log-linear schedules in closed form, non-finite gradients zeroed."""

import jax.numpy as jnp
import numpy as np
import optax

import helpers  # noqa: F401  (puts the repository on the path)
from helpers import tiny_config
from mipnerf.training import optimizer


def test_the_schedules_are_log_linear_in_closed_form(tmp_path):
    config = tiny_config(tmp_path, tmp_path, lr_init=1e-2, lr_final=1e-4, max_steps=100, lr_delay_steps=0,
                         pose_lr_init=1e-3, pose_lr_final=1e-5, pose_warmup_steps=20)
    for step in (0, 25, 50, 100, 150):
        frac = min(step / 100, 1)
        np.testing.assert_allclose(optimizer.lr_schedule(config)(step), 1e-2 * (1e-4 / 1e-2) ** frac, rtol=1e-5)
    pose = optimizer.pose_lr_schedule(config)
    assert float(pose(19)) == 0.0
    np.testing.assert_allclose([pose(20), pose(60), pose(100)], [1e-3, 1e-4, 1e-5], rtol=1e-5)
    reference = optax.exponential_decay(1e-3, 10, 0.1)
    np.testing.assert_allclose([optimizer.log_linear(1e-3, 1e-4, 10, s) for s in range(12)],
                               [reference(min(s, 10)) for s in range(12)], rtol=1e-5)


def test_a_nonfinite_gradient_entry_leaves_its_parameter_and_no_other_unchanged():
    tx = optax.chain(optimizer.zero_nonfinite(), optax.sgd(0.5))
    params = jnp.array([1.0, 2.0, 3.0])
    grads = jnp.array([jnp.nan, 1.0, jnp.inf])
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_array_equal(optax.apply_updates(params, updates), [1.0, 1.5, 3.0])
