"""mip-NeRF's claim on the built-in multiscale scene: IPE against NeRF's positional encoding.

    python benchmarks/antialias.py [--config.max_steps=N ...]

Trains configs/multiscale.py twice from scratch, same steps and seed: with IPE, and with
`disable_integration=True` (the positional encoding of the frustums' means, everything else
unchanged). Then evaluates both on the test views at every scale and prints the per-scale PSNR,
SSIM and LPIPS (AlexNet and VGG, "n/a" where a scale is smaller than the network takes) of each,
then a last line of JSON with `ipe_psnr_scale_mean`, `pe_psnr_scale_mean`, the same for SSIM and
LPIPS, `ipe_per_scale`, `pe_per_scale` and `wall_s`.
"""

import json
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks.common import Figures  # noqa: E402
from mipnerf.commands.cli import define_config, run  # noqa: E402

_CONFIG = define_config("configs/multiscale.py")


def main(argv):
    del argv
    from mipnerf import datasets
    from mipnerf.commands import evaluate, train

    base = _CONFIG.value
    datasets.load_scales(base, "train")  # makes the multiscale scene once, outside the timing
    figures = Figures()
    start = time.time()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, disable in (("ipe", False), ("pe", True)):
            config = base.copy_and_resolve_references()
            config.exp_dir, config.disable_integration, config.val_every = f"{tmp}/{name}", disable, 0
            tic = time.time()
            train.train(config, log=lambda s: None)
            figures[f"{name}_train_s"] = time.time() - tic
            results[name] = evaluate.evaluate(config, log=lambda s: None)
            print(f"{name.upper()} ({'IPE' if not disable else 'positional encoding of the means'}):")
            print(evaluate.scale_table(results[name]), flush=True)
    keys = evaluate.figures(evaluate.lpips_nets(base))
    for name in results:
        figures.update(**{f"{name}_{key}_scale_mean": results[name][f"{key}_scale_mean"] for key in keys
                        if key != "psnr_color_corrected"})
        figures[f"{name}_per_scale"] = [{k: r[k] for k in ("scale", "width", *keys) if k != "psnr_color_corrected"}
                                        for r in results[name]["per_scale"]]
    figures.update(steps=base.max_steps, wall_s=time.time() - start)
    print(json.dumps(figures))


if __name__ == "__main__":
    run(main)
