"""Evaluation behind eval.py: every test view rendered, scored (PSNR, SSIM) and saved."""

import json
import pathlib

import imageio.v3 as iio
import numpy as np
from tensorboardX import SummaryWriter

from mipnerf import datasets, metrics
from mipnerf.cameras import pose_refine
from mipnerf.commands import run_config
from mipnerf.commands.config_checks import check_config
from mipnerf.render import pose_fit, rendering, video


def score_and_save(index: int, image: rendering.Image, gt: np.ndarray, out_dir: pathlib.Path, disparity: bool,
                   mask=None) -> dict:
    """Writes color_NNN.png and depth_NNN.png of one view and scores its colour against `gt` [H, W, 3],
    ignoring the pixels that `mask` ([H, W] bool, True where kept; None: none) masks out.

    Returns:
      {"color", "depth": the file names written, "psnr", "ssim": of the colour clipped to [0, 1],
      "psnr_color_corrected": its PSNR after a per-image affine colour fit to `gt`
      (`metrics.color_corrected_psnr`),
      and "ssim_window" where the view is smaller than the standard SSIM window}.
    """
    rgb = np.clip(image.rgb, 0.0, 1.0)
    color, depth = f"color_{index:03d}.png", f"depth_{index:03d}.png"
    iio.imwrite(out_dir / color, video.to_uint8(rgb))
    iio.imwrite(out_dir / depth, video.depth_image(image.depth, image.acc, disparity))
    scores = dict(color=color, depth=depth, **scores_of(rgb, gt, mask))
    window = metrics.ssim_window(*rgb.shape[:2])
    return scores if window == metrics.SSIM_WINDOW else dict(scores, ssim_window=window)


def scores_of(rgb: np.ndarray, gt: np.ndarray, mask=None) -> dict:
    """{"psnr", "psnr_color_corrected", "ssim"} of a render `rgb` (in [0, 1]) against `gt`, over the kept pixels."""
    return {"psnr": metrics.psnr(rgb, gt, mask), "psnr_color_corrected": metrics.color_corrected_psnr(rgb, gt, mask),
            "ssim": metrics.ssim(rgb, gt, mask)}


def pose_optimised_scores(renderer: rendering.Renderer, split, config) -> list:
    """Each view of `split` scored after its pose is fitted to its image (`pose_fit`), the model frozen.

    Returns:
      One dict per view: {"psnr_test_pose_optimized", "psnr_color_corrected_test_pose_optimized",
      "ssim_test_pose_optimized", "test_pose_rotation_deg": the fitted correction's angle,
      "test_pose_translation": its length, in the model's units}.
    """
    refine_fn = pose_fit.make_refine_fn(config, renderer.model)
    corrections = pose_fit.optimised_poses(refine_fn, renderer.params, split, config)
    camtoworlds = pose_refine.apply_numpy(corrections, split.camtoworlds)
    views = rendering.render_views(renderer, camtoworlds, split.intrinsics, split.height, split.width, config,
                                   desc="eval, test poses optimised")
    out = []
    for i, image in enumerate(views):
        scores = scores_of(np.clip(image.rgb, 0.0, 1.0), split.colors(i), split.mask(i))
        out.append({f"{key}_test_pose_optimized": value for key, value in scores.items()} | {
            "test_pose_rotation_deg": float(pose_refine.angles_deg(corrections[i:i + 1])[0]),
            "test_pose_translation": float(np.linalg.norm(corrections[i, 3:]))})
    return out


def mean_psnr(renderer: rendering.Renderer, split, config, views=None) -> float:
    """Mean PSNR of the first `views` (default: every) view of `split` rendered by `renderer`, over
    each view's kept pixels."""
    count = len(split.images) if views is None else min(views, len(split.images))
    images = rendering.render_views(renderer, split.camtoworlds[:count], split.intrinsics.take(slice(count)),
                                    split.height, split.width, config, desc="psnr")
    return float(np.mean([metrics.psnr(np.clip(image.rgb, 0, 1), split.colors(i), split.mask(i))
                          for i, image in enumerate(images)]))


def evaluate(config, log=print, explicit=None) -> dict:
    """Renders every test view of the run in `config.exp_dir` at the training resolution and scores it.

    The model and scene fields come from the run's config.json (`run_config.for_restore`, with
    `explicit` the fields named on the command line; None: all of them). Restores checkpoint
    `config.eval_step` (0: the newest whole one) and writes into `exp_dir/eval/`:
    color_NNN.png (8-bit), depth_NNN.png (colour-mapped) and metrics.json. The mean PSNR and
    SSIM also go to tensorboard (`exp_dir/tb`, tags eval/psnr and eval/ssim) and to `log`.

    Returns:
      The contents of metrics.json: {"step", "psnr", "psnr_color_corrected", "ssim" (means over
      the views), "images": [{"color", "depth", "ground_truth", "psnr", "psnr_color_corrected",
      "ssim"}, ...] in test-split order}.
      A run trained with `pose_refine` (and `eval_pose_steps` > 0) is also scored with each test
      pose fitted to its image, the model frozen (`pose_fit`): "psnr_test_pose_optimized",
      "psnr_color_corrected_test_pose_optimized", "ssim_test_pose_optimized" and "eval_pose_steps"
      beside the figures for the poses as given, and per view the same with
      "test_pose_rotation_deg" and "test_pose_translation" (`pose_optimised_scores`).
      A multiscale scene adds each image's "scale", "per_scale": [{"scale", "width", "height",
      "psnr", "ssim", "count"}, ...] and "psnr_scale_mean", "ssim_scale_mean": the means of the
      per-scale means (how mip-NeRF reports its average).
    """
    config = run_config.for_restore(config, explicit)
    check_config(config, explicit or ())
    exp_dir = pathlib.Path(config.exp_dir)
    renderer = rendering.load_renderer(config, log)
    scales = datasets.load_scales(config, "test")
    out_dir = exp_dir / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    optimise_poses = config.pose_refine and config.eval_pose_steps > 0
    images = score_views(renderer, scales, config, out_dir, optimise_poses)
    mean = lambda key: float(np.mean([m[key] for m in images]))
    result = {"step": renderer.step, "psnr": mean("psnr"), "psnr_color_corrected": mean("psnr_color_corrected"),
              "ssim": mean("ssim")}
    if optimise_poses:
        result.update({key: mean(key) for key in POSE_OPTIMISED}, eval_pose_steps=config.eval_pose_steps)
    result["images"] = images
    if datasets.FORMATS[config.dataset].multiscale:
        result.update(scale_means(scales, images))
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    write_tensorboard(exp_dir, result)
    if "per_scale" in result:
        log(scale_table(result["per_scale"], result["psnr_scale_mean"], result["ssim_scale_mean"]))
    log(f"step {renderer.step}: PSNR {result['psnr']:.2f} dB "
        f"(colour-corrected {result['psnr_color_corrected']:.2f} dB), SSIM {result['ssim']:.4f} "
        f"(mean of {len(images)} test views); wrote {out_dir}")
    if optimise_poses:
        log(f"with each test pose optimised ({config.eval_pose_steps} steps, model frozen): "
            f"PSNR {result['psnr_test_pose_optimized']:.2f} dB (colour-corrected "
            f"{result['psnr_color_corrected_test_pose_optimized']:.2f} dB), "
            f"SSIM {result['ssim_test_pose_optimized']:.4f}")
    return result


POSE_OPTIMISED = ("psnr_test_pose_optimized", "psnr_color_corrected_test_pose_optimized", "ssim_test_pose_optimized")


def score_views(renderer: rendering.Renderer, scales: list, config, out_dir: pathlib.Path, optimise_poses: bool) -> list:
    """Every view of the test `scales` rendered, saved into `out_dir` and scored (`score_and_save`),
    also with its pose fitted with `optimise_poses` (`pose_optimised_scores`); numbered across the
    scales, each with its ground truth's file and, for a multiscale scene, its scale."""
    disparity = config.ray_spacing == "disparity"
    multiscale = datasets.FORMATS[config.dataset].multiscale
    images = []
    for split in scales:
        views = rendering.render_views(renderer, split.camtoworlds, split.intrinsics, split.height, split.width, config,
                                       desc="eval" if not multiscale else f"eval scale {split.scale}")
        scored = [score_and_save(len(images) + i, image, split.colors(i), out_dir, disparity, split.mask(i))
                  for i, image in enumerate(views)]
        if optimise_poses:
            scored = [a | b for a, b in zip(scored, pose_optimised_scores(renderer, split, config))]
        images += [dict(scores, ground_truth=split.files[i], **({"scale": split.scale} if multiscale else {}))
                   for i, scores in enumerate(scored)]
    return images


def write_tensorboard(exp_dir: pathlib.Path, result: dict) -> None:
    """The mean figures of `result` (metrics.json's) as eval/ scalars of `exp_dir/tb` at its step."""
    step = result["step"]
    with SummaryWriter(str(exp_dir / "tb")) as writer:
        for key in ("psnr", "psnr_color_corrected", "ssim", "psnr_test_pose_optimized"):
            if key in result:
                writer.add_scalar(f"eval/{key}", result[key], step)
        for row in result.get("per_scale", []):
            writer.add_scalar(f"eval/psnr_scale{row['scale']}", row["psnr"], step)
            writer.add_scalar(f"eval/ssim_scale{row['scale']}", row["ssim"], step)


def scale_means(scales: list, images: list) -> dict:
    """{"per_scale": the mean PSNR and SSIM of each scale's views, "psnr_scale_mean", "ssim_scale_mean"}."""
    rows = []
    for split in scales:
        scored = [m for m in images if m["scale"] == split.scale]
        rows.append({"scale": split.scale, "width": split.width, "height": split.height,
                     "psnr": float(np.mean([m["psnr"] for m in scored])),
                     "ssim": float(np.mean([m["ssim"] for m in scored])), "count": len(scored)})
    return {"per_scale": rows, "psnr_scale_mean": float(np.mean([r["psnr"] for r in rows])),
            "ssim_scale_mean": float(np.mean([r["ssim"] for r in rows]))}


def scale_table(rows: list, psnr_mean: float, ssim_mean: float) -> str:
    """The per-scale means as a small text table."""
    lines = ["scale  size       views  PSNR    SSIM"]
    lines += [f"{r['scale']:<6} {r['width']:>4}x{r['height']:<5} {r['count']:>5}  {r['psnr']:6.2f}  {r['ssim']:.4f}"
              for r in rows]
    lines.append(f"mean of the scales            {psnr_mean:6.2f}  {ssim_mean:.4f}")
    return "\n".join(lines)
