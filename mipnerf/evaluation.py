"""Evaluation behind eval.py: every test view rendered, scored (PSNR, SSIM) and saved."""

import json
import pathlib

import imageio.v3 as iio
import numpy as np
from tensorboardX import SummaryWriter

from mipnerf import datasets, metrics, rendering, video
from mipnerf.config_checks import check_config
from mipnerf.errors import ConfigError


def score_and_save(index: int, image: rendering.Image, gt: np.ndarray, out_dir: pathlib.Path, disparity: bool) -> dict:
    """Writes color_NNN.png and depth_NNN.png of one view and scores its colour against `gt` [H, W, 3].

    Returns:
      {"color", "depth": the file names written, "psnr", "ssim": of the colour clipped to [0, 1]}.
    """
    rgb = np.clip(image.rgb, 0.0, 1.0)
    color, depth = f"color_{index:03d}.png", f"depth_{index:03d}.png"
    iio.imwrite(out_dir / color, video.to_uint8(rgb))
    iio.imwrite(out_dir / depth, video.depth_image(image.depth, image.acc, disparity))
    return {"color": color, "depth": depth, "psnr": metrics.psnr(rgb, gt), "ssim": metrics.ssim(rgb, gt)}


def evaluate(config, log=print) -> dict:
    """Renders every test view of the run in `config.exp_dir` at the training resolution and scores it.

    Restores checkpoint `config.eval_step` (0: the latest) and writes into `exp_dir/eval/`:
    color_NNN.png (8-bit), depth_NNN.png (colour-mapped) and metrics.json. The mean PSNR and
    SSIM also go to tensorboard (`exp_dir/tb`, tags eval/psnr and eval/ssim) and to `log`.

    Returns:
      The contents of metrics.json: {"step", "psnr", "ssim" (means over the views),
      "images": [{"color", "depth", "ground_truth", "psnr", "ssim"}, ...] in test-split order}.
    """
    check_config(config)
    exp_dir = pathlib.Path(config.exp_dir)
    renderer = rendering.load_renderer(config, config.eval_step or None)
    split = datasets.load_split(config, "test")
    if min(split.height, split.width) < metrics.SSIM_WINDOW:
        raise ConfigError(f"config.factor={config.factor}: test images of {split.width}x{split.height} pixels are "
                          f"smaller than the {metrics.SSIM_WINDOW}x{metrics.SSIM_WINDOW} SSIM window; lower the factor")
    out_dir = exp_dir / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    views = rendering.render_views(renderer, split.camtoworlds, split.intrinsics, split.height, split.width, config,
                                   desc="eval")
    disparity = config.ray_spacing == "disparity"
    images = [dict(score_and_save(i, image, split.images[i], out_dir, disparity), ground_truth=split.files[i])
              for i, image in enumerate(views)]
    result = {"step": renderer.step, "psnr": float(np.mean([m["psnr"] for m in images])),
              "ssim": float(np.mean([m["ssim"] for m in images])), "images": images}
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    with SummaryWriter(str(exp_dir / "tb")) as writer:
        writer.add_scalar("eval/psnr", result["psnr"], renderer.step)
        writer.add_scalar("eval/ssim", result["ssim"], renderer.step)
    log(f"step {renderer.step}: PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f} "
        f"(mean of {len(images)} test views); wrote {out_dir}")
    return result
