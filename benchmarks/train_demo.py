"""Trains configs/demo.py on the built-in scene from scratch and reports speed and test quality.

    python benchmarks/train_demo.py [--config.max_steps=N ...]

Prints steps/s, rays/s, wall time, peak memory and the mean PSNR, SSIM and LPIPS (AlexNet and
VGG; none with --config.eval_lpips=False) over the test views, scored as eval.py scores them,
then a last line of JSON with `test_psnr`, `test_lpips_alex`, `wall_s`, `rays_per_s`,
`peak_memory_mb` and more.
"""

import json
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks.common import Figures, peak_memory_mb  # noqa: E402
from mipnerf.commands.cli import define_config, run  # noqa: E402

_CONFIG = define_config("configs/demo.py")


def main(argv):
    del argv
    import jax

    from mipnerf import datasets
    from mipnerf.commands import evaluate, train
    from mipnerf.model import mipnerf360
    from mipnerf.render import rendering
    from mipnerf.training import distributed

    config = _CONFIG.value
    with tempfile.TemporaryDirectory() as tmp:
        config.unlock()
        config.exp_dir = tmp  # always from scratch
        config.lock()
        num_images = len(datasets.load_split(config, "train").images)  # renders the scene once, outside the timing
        start = time.time()
        state = train.train(config, log=lambda s: None)
        train_s = time.time() - start

    model = mipnerf360.build_model(config, num_images)  # the images' count sizes per-image appearance, if any
    renderer = rendering.Renderer(rendering.make_render_fn(config, model), state.params, int(state.step),
                                  distributed.make_mesh())
    test = datasets.load_split(config, "test")
    start = time.time()
    scores = evaluate.mean_scores(renderer, test, config, nets=evaluate.lpips_nets(config))
    score_s = time.time() - start

    figures = Figures()
    figures.update(
        device=jax.devices()[0].device_kind,
        steps=config.max_steps,
        batch_size=config.batch_size,
        steps_per_s=config.max_steps / train_s,
        rays_per_s=config.max_steps * config.batch_size / train_s,
        wall_s=train_s,
        score_s=score_s,
        peak_memory_mb=peak_memory_mb(),
        **{f"test_{key}": value for key, value in scores.items()},
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    run(main)
