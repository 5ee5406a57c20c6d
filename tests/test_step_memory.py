"""The memory levers of a training step change nothing it computes: micro-batches (`grad_accum`)
give the update of the whole batch, rematerialisation (`remat`) the same gradients, and bf16
keeps the MLPs' activations in bf16 and everything around them in float32."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from helpers import tiny_config
from mipnerf.cameras.camera import Rays
from mipnerf.commands import config_checks
from mipnerf.errors import ConfigError
from mipnerf.model import mipnerf360
from mipnerf.training import distributed, update

BATCH = 256


def ray_batch(n: int, seed: int = 0, lossmult: bool = False) -> update.RayData:
    """`n` rays from cameras at radius 4 aimed near the origin (as the demo scene's), random colours,
    and with `lossmult` per-ray weights 4^k of a multiscale batch."""
    rng = np.random.default_rng(seed)
    origins = rng.normal(size=(n, 3))
    origins = 4 * origins / np.linalg.norm(origins, axis=-1, keepdims=True)
    directions = 0.3 * rng.normal(size=(n, 3)) - origins / 4
    viewdirs = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    column = lambda v: np.full((n, 1), v)
    rays = Rays(origins, directions, viewdirs, column(0.002), column(2.0), column(6.0))
    weights = 4.0 ** rng.integers(0, 3, (n, 1)) if lossmult else None
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), update.RayData(rays, rng.uniform(size=(n, 3)), weights))


def gradient_probe() -> optax.GradientTransformation:
    """An optimizer whose state after an update is the gradients it was given (and whose update
    is 0), so that `make_update`'s gradients can be compared without an optimizer in between."""
    return optax.GradientTransformation(lambda params: jax.tree.map(jnp.zeros_like, params),
                                        lambda grads, state, params=None: (jax.tree.map(jnp.zeros_like, grads), grads))


def one_update(config, batch, tx_fn=None, key=jax.random.PRNGKey(7)):
    """(new state, stats) of one update of a fresh state on `batch`; `tx_fn(params)` replaces the
    config's optimizer."""
    model = mipnerf360.build_model(config)
    state, tx = update.create_train_state(config, model, distributed.make_mesh())
    if tx_fn is not None:
        tx = tx_fn(state.params)
        state = state.replace(opt_state=tx.init(state.params))
    return jax.jit(update.make_update(config, model, tx))(state, batch, key)


def assert_trees_close(a, b, rtol=1e-5):
    """Every leaf equal to float32 tolerance, relative to the leaf's largest entry for entries near 0."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * float(np.max(np.abs(y))))


MICRO_BATCH_CASES = {
    "jitter": dict(),
    "multiscale": dict(data_loss="charbonnier", distortion_loss_mult=0.01),
    "grid": dict(field="grid", grid_levels=4, grid_table_log2=10, prop_grid_levels=2, prop_grid_table_log2=10,
                 grid_max_res=64, prop_grid_max_res=32, grid_width=16, view_width=16, bottleneck_width=8),
}


@pytest.mark.parametrize("case", MICRO_BATCH_CASES)
def test_micro_batches_give_the_update_and_stats_of_the_whole_batch(tmp_path, case):
    batch = ray_batch(BATCH, lossmult=case == "multiscale")
    results = {}
    for grad_accum in (1, 4):
        config = tiny_config(tmp_path, tmp_path, grad_accum=grad_accum, batch_size=BATCH, **MICRO_BATCH_CASES[case])
        probe = one_update(config, batch, lambda params: gradient_probe())
        state, stats = one_update(config, batch)
        results[grad_accum] = probe[0].opt_state, state.params, stats
    (grads_1, params_1, stats_1), (grads_4, params_4, stats_4) = results[1], results[4]
    assert_trees_close(grads_4, grads_1)
    assert_trees_close(params_4, params_1)
    assert set(stats_4) == set(stats_1)
    for name in stats_1:
        np.testing.assert_allclose(stats_4[name], stats_1[name], rtol=1e-5, err_msg=name)
    assert float(stats_1["distortion"]) > 0 and float(stats_1["interlevel"]) > 0
    assert (float(stats_1["weight_decay"]) > 0) == (case == "grid")


def test_weighted_data_loss_divides_by_the_whole_batchs_weights(tmp_path):
    config = tiny_config(tmp_path, tmp_path)
    batch = ray_batch(8, lossmult=True)
    rgb = batch.rgb[::-1]
    whole = update.data_loss(rgb, batch.rgb, config, batch.lossmult)
    total = update.batch_totals(batch, config).data_weight
    halves = [update.data_loss(rgb[s], batch.rgb[s], config, batch.lossmult[s], total) for s in (slice(0, 4), slice(4, 8))]
    np.testing.assert_allclose(sum(halves), whole, rtol=1e-6)
    unweighted = update.data_loss(rgb, batch.rgb, config)
    assert abs(float(whole) - float(unweighted)) > 1e-3 * float(unweighted)  # the weights matter in this batch


def test_a_ray_samples_the_same_in_any_batch(tmp_path):
    config = tiny_config(tmp_path, tmp_path)
    model = mipnerf360.build_model(config)
    params = update.create_train_state(config, model, distributed.make_mesh())[0].params
    rays = ray_batch(16).rays
    keys = jax.random.split(jax.random.PRNGKey(3), 16)
    apply = jax.jit(lambda rays, keys: model.apply(params, keys, rays, 0.5, jnp.ones(3))[1])
    whole = apply(rays, keys)
    part = apply(jax.tree.map(lambda x: x[5:9], rays), keys[5:9])
    for r_whole, r_part in zip(whole, part):
        np.testing.assert_allclose(r_part.s, r_whole.s[5:9], rtol=1e-6, atol=1e-7)
    # The keys do jitter the samples: other keys, other intervals; no keys, the stratum centres.
    other = apply(rays, jax.random.split(jax.random.PRNGKey(4), 16))
    assert np.max(np.abs(other[0].s - whole[0].s)) > 1e-3
    deterministic = apply(rays, None)
    assert np.max(np.abs(deterministic[0].s - whole[0].s)) > 1e-3
    np.testing.assert_array_equal(deterministic[0].s, apply(rays, None)[0].s)


def test_micro_batches_must_divide_each_devices_rays(tmp_path):
    mesh = distributed.make_mesh()
    update.check_batch_divides(BATCH, mesh, 4)
    with pytest.raises(ConfigError, match=r"config.grad_accum=3: expected a divisor of the rays per device \(256"):
        update.check_batch_divides(BATCH, mesh, 3)
    for value in (0, 3):
        with pytest.raises(ConfigError, match=f"config.grad_accum={value}: expected"):
            config_checks.check_config(tiny_config(tmp_path, tmp_path, grad_accum=value))


def test_micro_batches_take_the_same_number_of_rays_from_every_devices_shard():
    rows = jnp.arange(32)  # 4 devices' contiguous shards of 8 rays
    micro = update.split_micro_batches(rows, 4)
    assert micro.shape == (4, 8)
    for m in micro:
        np.testing.assert_array_equal(np.bincount(np.asarray(m) // 8, minlength=4), [2, 2, 2, 2])
    np.testing.assert_array_equal(np.sort(np.ravel(micro)), rows)


@pytest.mark.parametrize("field", ["mlp", "grid"])
def test_remat_keeps_the_parameters_and_the_gradients(tmp_path, field):
    batch = ray_batch(64)
    grads, params = {}, {}
    for remat in (False, True):
        config = tiny_config(tmp_path, tmp_path, remat=remat, batch_size=64, **(MICRO_BATCH_CASES["grid"] if field == "grid" else {}))
        model = mipnerf360.build_model(config)
        params[remat] = update.create_train_state(config, model, distributed.make_mesh())[0].params
        grads[remat] = one_update(config, batch, lambda params: gradient_probe())[0].opt_state
    assert jax.tree.structure(params[True]) == jax.tree.structure(params[False])
    assert jax.tree.map(jnp.shape, params[True]) == jax.tree.map(jnp.shape, params[False])
    assert_trees_close(params[True], params[False], rtol=0)
    assert_trees_close(grads[True], grads[False])


def jaxpr_values(jaxpr):
    """(primitive name, output avals) of every equation of a closed jaxpr, nested jaxprs included."""
    for eqn in jaxpr.eqns:
        yield eqn.primitive.name, [v.aval for v in eqn.outvars]
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else [param]:
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    yield from jaxpr_values(sub.jaxpr)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    yield from jaxpr_values(sub)


@pytest.mark.parametrize("remat", [False, True])
def test_bf16_keeps_mlp_activations_bf16_and_the_rest_float32(tmp_path, remat):
    # Widths that no other dimension of the step shares, so that an MLP activation is recognisable.
    config = tiny_config(tmp_path, tmp_path, precision="bf16", grad_accum=2, remat=remat, batch_size=64,
                         prop_width=40, nerf_width=56, bottleneck_width=24, view_width=20)
    model = mipnerf360.build_model(config)
    state, tx = update.create_train_state(config, model, distributed.make_mesh())
    jaxpr = jax.make_jaxpr(update.make_update(config, model, tx))(state, ray_batch(64), jax.random.PRNGKey(0))
    widths = {40, 56, 24, 20}
    activations, delicate = set(), set()
    for name, avals in jaxpr_values(jaxpr.jaxpr):
        for aval in avals:
            if not hasattr(aval, "shape"):
                continue
            # Activations of a micro-batch's 32 rays x 16 samples (and their cotangents), not
            # parameters (relu's masks are bool).
            floating = jnp.issubdtype(aval.dtype, jnp.floating)
            if floating and aval.ndim >= 2 and aval.shape[-1] in widths and np.prod(aval.shape[:-1]) >= 32 * 16:
                activations.add(jnp.dtype(aval.dtype).name)
            if name in ("sin", "cos", "exp", "log", "sqrt", "cumsum", "sort"):
                delicate.add(jnp.dtype(aval.dtype).name)
    assert activations == {"bfloat16"}
    assert delicate == {"float32"}
