"""Evaluates a trained run on the test views: PSNR and SSIM, with the renders saved.

    python eval.py --config=configs/demo.py
    python eval.py --config=configs/blender.py --config.data_dir=PATH/nerf_synthetic/lego --config.eval_step=50000

The model and scene come from the run's exp_dir/config.json, so `--config.exp_dir=exp/lego`
alone is enough; a model flag that differs from the run's is an error.
Writes exp_dir/eval/: color_NNN.png, depth_NNN.png and metrics.json (the step, mean psnr,
psnr_color_corrected (after a per-image affine colour fit to the ground truth) and ssim, and
each view's values).
"""

import sys

from mipnerf.commands.cli import define_config, explicit_fields, run

_CONFIG = define_config()


def main(argv):
    del argv
    from mipnerf.commands import evaluate

    evaluate.evaluate(_CONFIG.value, explicit=explicit_fields(sys.argv))


if __name__ == "__main__":
    run(main)
