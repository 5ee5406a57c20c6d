"""Evaluates a trained run on the test views: PSNR and SSIM, with the renders saved.

    python eval.py --config=configs/demo.py
    python eval.py --config=configs/blender.py --config.data_dir=PATH/nerf_synthetic/lego --config.eval_step=50000

Use the config and exp_dir of training. Writes exp_dir/eval/: color_NNN.png, depth_NNN.png
and metrics.json (the step, mean psnr and ssim, and each view's values).
"""

from mipnerf.cli import define_config, run

_CONFIG = define_config()


def main(argv):
    del argv
    from mipnerf import evaluation

    evaluation.evaluate(_CONFIG.value)


if __name__ == "__main__":
    run(main)
