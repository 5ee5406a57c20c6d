"""Trains configs/demo.py on the built-in scene from scratch and reports speed and test PSNR.

    python benchmarks/train_demo.py [--config.max_steps=N ...]

Prints steps/s, rays/s, wall time, peak memory and the mean PSNR over the test views, then a
last line of JSON with `test_psnr`, `wall_s`, `rays_per_s`, `peak_memory_mb` and more.
"""

import json
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks.common import Figures, peak_memory_mb  # noqa: E402
from mipnerf.cli import define_config, run  # noqa: E402

_CONFIG = define_config("configs/demo.py")


def main(argv):
    del argv
    import jax
    import numpy as np

    from mipnerf import datasets, models, rendering, trainer, training

    config = _CONFIG.value
    with tempfile.TemporaryDirectory() as tmp:
        config.unlock()
        config.exp_dir = tmp  # always from scratch
        config.lock()
        datasets.load_split(config, "train")  # renders the demo scene once, outside the timing
        start = time.time()
        state = trainer.train(config, log=lambda s: None)
        train_s = time.time() - start

    model = models.build_model(config)
    mesh = training.make_mesh()
    render_fn = rendering.make_render_fn(config, model)
    test = datasets.load_split(config, "test")
    rays = datasets.split_rays(test, config)
    start = time.time()
    psnrs = []
    for i in range(len(test.images)):
        image = rendering.render_image(render_fn, state.params, jax.tree.map(lambda x: x[i], rays), config.render_chunk, mesh)
        psnrs.append(float(-10 * np.log10(np.mean((image.rgb - test.images[i]) ** 2))))
    render_s = time.time() - start

    figures = Figures()
    figures.update(
        device=jax.devices()[0].device_kind,
        steps=config.max_steps,
        batch_size=config.batch_size,
        steps_per_s=config.max_steps / train_s,
        rays_per_s=config.max_steps * config.batch_size / train_s,
        wall_s=train_s,
        render_s=render_s,
        test_psnr=float(np.mean(psnrs)),
        peak_memory_mb=peak_memory_mb(),
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    run(main)
