"""Training: the loss falls, resume repeats an uninterrupted run, bf16 agrees with f32, NaNs are caught."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import interrupt_after, setup_training, tiny_config
from mipnerf import datasets, metrics
from mipnerf.commands import train
from mipnerf.model import mipnerf360, stepfun
from mipnerf.render import rendering
from mipnerf.store.checkpoints import Checkpointer
from mipnerf.training import train_images, update


def setup_step(config):
    t = setup_training(config)
    return t.model, t.state, update.make_train_step(config, t.model, t.tx, t.mesh), t.data


def test_training_reduces_loss_and_proposals_bound_nerf_weights(tiny_scene, tmp_path):
    config = tiny_config(tiny_scene, tmp_path, max_steps=300)
    model, state, step, data = setup_step(config)
    history = []
    for _ in range(config.max_steps):
        state, stats = step(state, data)
        history.append(jax.device_get(stats))
    first = {k: np.mean([h[k] for h in history[:10]]) for k in history[0]}
    last = {k: np.mean([h[k] for h in history[-10:]]) for k in history[0]}
    assert last["psnr"] > first["psnr"] + 6, (first["psnr"], last["psnr"])
    assert last["loss"] < 0.5 * first["loss"]
    assert last["interlevel"] < 0.5 * np.max([h["interlevel"] for h in history[:50]])
    # After training, each proposal round's outer measure bounds the NeRF weights almost everywhere.
    rays = jax.tree.map(lambda x: x.reshape(-1, x.shape[-1])[:512], setup_training(config).rays)
    _, rounds = model.apply(state.params, None, rays, 1.0, jnp.ones(3))
    bound = stepfun.outer_measure(rounds[-1].s, rounds[0].s, rounds[0].weights)
    excess = jnp.sum(jnp.maximum(rounds[-1].weights - bound, 0)) / jnp.sum(rounds[-1].weights)
    assert excess < 0.05


def test_sigterm_saves_and_resume_matches_uninterrupted_training(tiny_scene, tmp_path, monkeypatch):
    config = lambda exp: tiny_config(tiny_scene, tmp_path / exp, max_steps=40, checkpoint_every=100)
    straight = train.train(config("a"), log=lambda s: None)
    with monkeypatch.context() as m, pytest.raises(train.Interrupted, match="SIGTERM.*step 15") as stopped:
        interrupt_after(m, 15)
        train.train(config("b"), log=lambda s: None)
    assert int(stopped.value.state.step) == 15 and stopped.value.exit_code == 143
    assert Checkpointer(tmp_path / "b" / "checkpoints").latest_step() == 15
    messages = []
    resumed = train.train(config("b"), log=messages.append)
    assert any("resuming from step 15" in m for m in messages)
    assert int(resumed.step) == 40
    for a, b in zip(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert Checkpointer(tmp_path / "b" / "checkpoints").latest_step() == 40


def test_bf16_and_f32_give_the_same_loss(tiny_scene, tmp_path):
    losses = {}
    for precision in ("f32", "bf16"):
        config = tiny_config(tiny_scene, tmp_path, precision=precision)
        _, state, step, data = setup_step(config)
        _, stats = step(state, data)
        losses[precision] = float(stats["data"])
    assert mipnerf360.compute_dtype("bf16") == jnp.bfloat16
    np.testing.assert_allclose(losses["bf16"], losses["f32"], rtol=2e-2)


def test_nonfinite_loss_skips_the_update_and_is_reported(tiny_scene, tmp_path, monkeypatch):
    config = tiny_config(tiny_scene, tmp_path, max_steps=10, checkpoint_every=5)
    train.train(config, log=lambda s: None)
    put = train_images.put_train_images

    def nan_cameras(*args):  # every ray's origin becomes NaN
        images = put(*args)
        return images.replace(cameras=images.cameras._replace(camtoworlds=images.cameras.camtoworlds * np.nan))

    monkeypatch.setattr(train_images, "put_train_images", nan_cameras)
    with pytest.raises(train.NonFiniteLoss, match="step 11.*checkpoint \\(step 10\\) is intact"):
        train.train(tiny_config(tiny_scene, tmp_path, max_steps=20, checkpoint_every=5), log=lambda s: None)
    ckpt = Checkpointer(tmp_path / "checkpoints")
    assert ckpt.latest_step() == 10
    _, state, _, _ = setup_step(config)
    restored = ckpt.restore(state)
    assert train.params_finite(restored.params)


class Writer:
    """What `train.log_val_view` writes, by tag."""

    def __init__(self):
        self.logged = {}

    def add_scalar(self, tag, value, step):
        self.logged[tag] = value

    def add_image(self, tag, image, step, dataformats):
        self.logged[tag] = image


def test_the_validation_view_is_the_first_of_its_split_loaded_once(tiny_scene, tmp_path):
    config = tiny_config(tiny_scene, tmp_path, val_every=1)
    view = train.first_val_view(config)
    split = datasets.load_split(config, "val")
    first = jax.tree.map(lambda x: x[0], datasets.split_cameras(split, config))
    for got, expected in zip(jax.tree.leaves(view.cameras), jax.tree.leaves(first)):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(view.colors, split.colors(0))
    t = setup_training(config)
    render_fn = rendering.make_render_fn(config, t.model)
    writer = Writer()
    train.log_val_view(writer, 1, render_fn, t.state.params, view, config, t.mesh)
    image = rendering.render_image(render_fn, t.state.params, first, view.lens, config.render_chunk, t.mesh)
    assert writer.logged["val/psnr"] == metrics.psnr(image.rgb, split.colors(0), split.mask(0))
    assert writer.logged["val/rgb"].shape == (16, 32, 3)


class DecayedMLP(mipnerf360.MLP):
    """An MLP whose field brings its own weight decay: half the squared entries of its first layer."""

    def decay(self, params):
        return 0.5 * jnp.sum(params["layer_0"]["kernel"] ** 2)


def build_decayed_mlps(config, dtype):
    (prop,), nerf = mipnerf360.build_mlp_fields(config, dtype)
    decayed = lambda field: DecayedMLP(**{f.name: getattr(field, f.name) for f in field.__dataclass_fields__.values()
                                          if f.init})
    return (decayed(prop),), decayed(nerf)


def test_a_new_kind_of_field_is_one_entry_of_fields_and_brings_its_own_weight_decay(tiny_scene, tmp_path,
                                                                                    monkeypatch):
    from mipnerf.commands.config_checks import check_config

    monkeypatch.setitem(mipnerf360.FIELDS, "decayed", mipnerf360.FieldKind(build_decayed_mlps, ()))
    config = tiny_config(tiny_scene, tmp_path, field="decayed", max_steps=1)
    check_config(config, explicit={"field"})
    model, state, step, data = setup_step(config)
    layers = [state.params["params"][name]["layer_0"]["kernel"] for name in ("prop_mlp", "nerf_mlp")]
    expected = sum(0.5 * float(jnp.sum(kernel ** 2)) for kernel in layers)
    _, stats = step(state, data)
    np.testing.assert_allclose(float(stats["weight_decay"]), expected, rtol=1e-5)
    assert float(stats["loss"]) > expected
