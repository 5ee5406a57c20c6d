"""Small scenes and configs for tests: tiny images, tiny models, seconds per run."""

import pathlib
import sys
from typing import Any, NamedTuple

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from configs import demo as demo_config  # noqa: E402


def tiny_config(scene_dir, exp_dir, **overrides):
    """The demo config shrunk to a model and batch that train in seconds on a CPU."""
    c = demo_config.get_config()
    c.dataset = "blender"
    c.data_dir = str(scene_dir)
    c.exp_dir = str(exp_dir)
    c.num_prop_samples = (16,)
    c.num_nerf_samples = 16
    c.max_deg_point = 6
    c.deg_view = 2
    c.prop_depth, c.prop_width = 1, 32
    c.nerf_depth, c.nerf_width = 2, 64
    c.bottleneck_width, c.view_width = 32, 32
    c.batch_size = 256
    c.max_steps = 200
    c.lr_delay_steps = 20
    c.checkpoint_every = 100
    c.log_every = 20
    c.val_every = 0
    c.render_chunk = 512
    for k, v in overrides.items():
        c[k] = v
    return c


TRAINED_STEPS, TRAINED_EVERY = 150, 50  # the trained run of conftest's `trained_run`


def run_config(scene, exp_dir, **overrides):
    """`tiny_config` of the trained run: TRAINED_STEPS steps, a checkpoint every TRAINED_EVERY."""
    return tiny_config(scene, exp_dir, max_steps=TRAINED_STEPS, checkpoint_every=TRAINED_EVERY, **overrides)


class Training(NamedTuple):
    """What a training test starts from: the train split's images on the device (`data`), its rays
    [N, H, W, C] cast on the host (`rays`), a fresh state."""

    mesh: Any
    rays: Any
    data: Any
    model: Any
    state: Any
    tx: Any


def setup_training(config) -> Training:
    """Loads the config's train split onto every device and initialises the model and optimizer."""
    from mipnerf import datasets
    from mipnerf.model import mipnerf360
    from mipnerf.training import distributed, train_images, update

    mesh = distributed.make_mesh()
    split = datasets.load_split(config, "train")
    rays = datasets.split_rays(split, config)
    model = mipnerf360.build_model(config)
    state, tx = update.create_train_state(config, model, mesh)
    return Training(mesh, rays, train_images.put_train_images([split], config, mesh), model, state, tx)


def interrupt_after(monkeypatch, calls: int):
    """Makes the training loop receive SIGTERM during its `calls`-th step."""
    import os
    import signal

    from mipnerf.training import update

    make = update.make_train_step

    def make_interrupted(*args):
        step, count = make(*args), [0]

        def interrupted(state, data):
            count[0] += 1
            if count[0] == calls:
                os.kill(os.getpid(), signal.SIGTERM)
            return step(state, data)

        return interrupted

    monkeypatch.setattr(update, "make_train_step", make_interrupted)


def assert_cameras_alone_match(config, split: str) -> None:
    """The config's split loaded with `load_images=False` has no pixels and exactly the cameras,
    sizes, files and normalisation of the full load (every scale of a multiscale scene)."""
    from mipnerf import datasets

    full, alone = datasets.load_scales(config, split), datasets.load_scales(config, split, load_images=False)
    assert len(alone) == len(full)
    for a, f in zip(alone, full):
        assert a.images is None and a.masks is None
        for name in set(f._fields) - {"images", "masks"}:
            np.testing.assert_equal(getattr(a, name), getattr(f, name), err_msg=name)


def assert_one_line_error(result, *needles):
    """`result` (a finished subprocess) failed with one `error:` line holding every needle, and no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def read_stderr_until(child, done) -> str:
    """Reads a subprocess's stderr (text mode) a character at a time until `done(text so far)`; fails
    with what it read if the stream ends first."""
    seen = ""
    while not done(seen):
        char = child.stderr.read(1)
        assert char, seen
        seen += char
    return seen


def get_config():
    """The tiny config as a config file for the entry points: `--config=tests/helpers.py --config.data_dir=...`."""
    return tiny_config("", "exp/tiny")


def mean_test_psnr(config, params) -> float:
    """Mean PSNR over the config's test views rendered with `params`."""
    from mipnerf import datasets
    from mipnerf.commands import evaluate
    from mipnerf.model import mipnerf360
    from mipnerf.render import rendering
    from mipnerf.training import distributed

    renderer = rendering.Renderer(rendering.make_render_fn(config, mipnerf360.build_model(config)), params, 0,
                                  distributed.make_mesh())
    return evaluate.mean_psnr(renderer, datasets.load_split(config, "test"), config)
