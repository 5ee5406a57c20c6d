"""Evaluation behind eval.py: every test view rendered, scored (PSNR, SSIM, LPIPS) and saved.

Renders are scored as the 8-bit images written to disk (quantised as the published tables of
multinerf and Zip-NeRF do), against the ground truth as loaded.
"""

import json
import pathlib

import imageio.v3 as iio
import numpy as np
from tensorboardX import SummaryWriter

from mipnerf import datasets, metrics
from mipnerf.cameras import pose_refine
from mipnerf.commands import evaluate_splats, run_config
from mipnerf.commands.config_checks import check_config
from mipnerf.render import pose_fit, rendering, video


def score_and_save(index: int, image: rendering.Image, gt: np.ndarray, out_dir: pathlib.Path, disparity: bool,
                   mask=None, nets=()) -> dict:
    """Writes color_NNN.png and depth_NNN.png of one view and scores its colour against `gt` [H, W, 3]
    (`scores_of`, with LPIPS `nets`), ignoring the pixels that `mask` ([H, W] bool, True where kept;
    None: none) masks out.

    Returns:
      {"color", "depth": the file names written, `scores_of`'s figures of the colour written,
      and "ssim_window" where the view is smaller than the standard SSIM window}.
    """
    rgb = video.to_uint8(image.rgb)
    color, depth = f"color_{index:03d}.png", f"depth_{index:03d}.png"
    iio.imwrite(out_dir / color, rgb)
    iio.imwrite(out_dir / depth, video.depth_image(image.depth, image.acc, disparity))
    scores = dict(color=color, depth=depth, **scores_of(image.rgb, gt, mask, nets))
    window = metrics.ssim_window(*rgb.shape[:2])
    return scores if window == metrics.SSIM_WINDOW else dict(scores, ssim_window=window)


def quantised(rgb: np.ndarray) -> np.ndarray:
    """A render [H, W, 3] as its 8-bit image holds it: clipped to [0, 1] and rounded to multiples of 1/255."""
    return video.to_uint8(rgb).astype(np.float32) / 255.0


def scores_of(rgb: np.ndarray, gt: np.ndarray, mask=None, nets=()) -> dict:
    """{"psnr", "psnr_color_corrected", "ssim", and "lpips_<net>" for each of `nets`} of a render `rgb`,
    quantised to 8 bits first (`quantised`), against `gt` [H, W, 3], over the kept pixels of `mask`.
    LPIPS, a network's figure with no mask, sees the masked-out pixels of the render replaced by the
    ground truth's, so that they add no difference of their own; it is None for a view too small for
    the network (`metrics.LPIPS_MIN_SIDE`)."""
    rgb = quantised(rgb)
    scores = {"psnr": metrics.psnr(rgb, gt, mask), "psnr_color_corrected": metrics.color_corrected_psnr(rgb, gt, mask),
              "ssim": metrics.ssim(rgb, gt, mask)}
    painted = rgb if mask is None else np.where(np.asarray(mask, bool)[..., None], rgb, gt)
    fits = lambda net: min(rgb.shape[:2]) >= metrics.LPIPS_MIN_SIDE[net]
    return scores | {f"lpips_{net}": metrics.lpips(painted, np.clip(gt, 0.0, 1.0), net) if fits(net) else None
                     for net in nets}


def mean(values) -> float | None:
    """The mean of the figures that are not None (None if there are none)."""
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def lpips_nets(config) -> tuple:
    """The LPIPS networks eval scores with (none with `eval_lpips` off), each loaded now, so that a
    missing package fails in one line before any view is rendered."""
    nets = metrics.LPIPS_NETS if config.eval_lpips else ()
    for net in nets:
        metrics.lpips_network(net)
    return nets


def pose_optimised_scores(renderer: rendering.Renderer, split, config, nets=(), log=print) -> list:
    """Each view of `split` scored after its pose is fitted to its image (`pose_fit`), the model frozen.

    Returns:
      One dict per view: `scores_of`'s figures (with LPIPS `nets`), each key ending in
      "_test_pose_optimized", and "test_pose_rotation_deg": the fitted correction's angle,
      "test_pose_translation": its length, in the model's units.
    """
    refiner = pose_fit.make_refiner(config, renderer.model)
    corrections = pose_fit.optimised_poses(refiner, renderer.params, split, config, log)
    camtoworlds = pose_refine.apply_numpy(corrections, split.camtoworlds)
    views = rendering.render_views(renderer, camtoworlds, split.intrinsics, split.height, split.width, config,
                                   desc="eval, test poses optimised")
    out = []
    for i, image in enumerate(views):
        scores = scores_of(image.rgb, split.colors(i), split.mask(i), nets)
        out.append({key + POSE_OPTIMISED: value for key, value in scores.items()} | {
            "test_pose_rotation_deg": float(pose_refine.angles_deg(corrections[i:i + 1])[0]),
            "test_pose_translation": float(np.linalg.norm(corrections[i, 3:]))})
    return out


def mean_scores(renderer: rendering.Renderer, split, config, views=None, nets=()) -> dict:
    """The mean of each figure of `scores_of` (LPIPS with `nets`) over the first `views` (default:
    every) view of `split` rendered by `renderer`, without writing anything."""
    scored = [scores_of(image.rgb, split.colors(i), split.mask(i), nets)
              for i, image in enumerate(first_views(renderer, split, config, views, "score"))]
    return {key: mean(m[key] for m in scored) for key in figures(nets)}


def mean_psnr(renderer: rendering.Renderer, split, config, views=None) -> float:
    """Mean PSNR of the first `views` (default: every) view of `split` rendered by `renderer` and
    quantised to 8 bits, over each view's kept pixels."""
    return float(np.mean([metrics.psnr(quantised(image.rgb), split.colors(i), split.mask(i))
                          for i, image in enumerate(first_views(renderer, split, config, views, "psnr"))]))


def first_views(renderer: rendering.Renderer, split, config, views, desc: str) -> list:
    """The first `views` (None: every) view of `split` rendered by `renderer` (progress as `desc`)."""
    count = len(split.images) if views is None else min(views, len(split.images))
    return rendering.render_views(renderer, split.camtoworlds[:count], split.intrinsics.take(slice(count)),
                                  split.height, split.width, config, desc=desc)


def evaluate(config, log=print, explicit=None) -> dict:
    """Renders every test view of the run in `config.exp_dir` at the training resolution and scores it.

    The model and scene fields come from the run's config.json (`run_config.for_restore`, with
    `explicit` the fields named on the command line; None: all of them). Restores checkpoint
    `config.eval_step` (0: the newest whole one) and writes into `exp_dir/eval/`:
    color_NNN.png (8-bit), depth_NNN.png (colour-mapped) and metrics.json. The means also go to
    tensorboard (`exp_dir/tb`, tags eval/psnr, eval/ssim, eval/lpips_alex, ...) and to `log`.

    Returns:
      The contents of metrics.json: {"step", "psnr", "psnr_color_corrected", "ssim", "lpips_alex",
      "lpips_vgg" (means over the views; LPIPS unless `eval_lpips` is off), "images": [{"color",
      "depth", "ground_truth", and the same figures}, ...] in test-split order}. Every figure is of
      the 8-bit render (`scores_of`).
      A run trained with `pose_refine` (and `eval_pose_steps` > 0) is also scored with each test
      pose fitted to its image, the model frozen (`pose_fit`): each figure again with the suffix
      "_test_pose_optimized", and "eval_pose_steps", "eval_pose_batch", beside the figures for the
      poses as given; per view also "test_pose_rotation_deg" and "test_pose_translation"
      (`pose_optimised_scores`).
      A multiscale scene adds each image's "scale", "per_scale": [{"scale", "width", "height",
      "count", and each figure's mean}, ...] and each figure's "<figure>_scale_mean": the mean of the
      per-scale means (how mip-NeRF reports its average).
      With `eval_splats`, "splats": the run's splats scored and timed likewise
      (`evaluate_splats.score_splats`), their images splats_color_NNN.png.
    """
    config = run_config.for_restore(config, explicit)
    check_config(config, explicit or ())
    nets = lpips_nets(config)
    exp_dir = pathlib.Path(config.exp_dir)
    renderer = rendering.load_renderer(config, log)
    splats = evaluate_splats.run_splats(config) if config.eval_splats else None
    scales = datasets.load_scales(config, "test")
    out_dir = exp_dir / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    optimise_poses = config.pose_refine and config.eval_pose_steps > 0
    images = score_views(renderer, scales, config, out_dir, optimise_poses, nets, log)
    keys = figures(nets)
    result = {"step": renderer.step} | {key: mean(m[key] for m in images) for key in keys}
    if optimise_poses:
        result.update({f"{key}{POSE_OPTIMISED}": mean(m[key + POSE_OPTIMISED] for m in images)
                       for key in keys}, eval_pose_steps=config.eval_pose_steps, eval_pose_batch=config.eval_pose_batch)
    result["images"] = images
    if datasets.FORMATS[config.dataset].multiscale:
        result.update(scale_means(scales, images, keys))
    if config.eval_splats:
        result["splats"] = evaluate_splats.score_splats(config, splats, renderer, scales, out_dir, scores_of, nets,
                                                        log)
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    write_tensorboard(exp_dir, result, keys)
    if "per_scale" in result:
        log(scale_table(result))
    log(f"step {renderer.step}: {summary(result, keys)} (mean of {len(images)} test views); wrote {out_dir}")
    if "splats" in result:
        splats = result["splats"]
        log(f"splats ({splats['count']:,}, SH degree {splats['sh_degree']}): {summary(splats, keys)}; "
            f"{splats['seconds_per_view'] * 1e3:.1f} ms a view ({splats['fps']:.0f} fps, {splats['rasteriser']}; "
            f"the JAX rasteriser {splats['jax_seconds_per_view'] * 1e3:.1f} ms), "
            f"{splats['speedup']:.0f}x faster than the NeRF's {splats['nerf_seconds_per_view']:.2f} s")
    if optimise_poses:
        log(f"with each test pose optimised ({config.eval_pose_steps} steps of at most {config.eval_pose_batch} pixels, "
            f"model frozen): {summary(result, keys, POSE_OPTIMISED)}")
    return result


POSE_OPTIMISED = "_test_pose_optimized"  # the suffix of the figures scored with fitted test poses


def figures(nets=()) -> tuple:
    """The names of the figures each view is scored with (`scores_of`), LPIPS with `nets`."""
    return ("psnr", "psnr_color_corrected", "ssim") + tuple(f"lpips_{net}" for net in nets)


def summary(result: dict, keys: tuple, suffix: str = "") -> str:
    """The mean figures `keys` (with `suffix`) of `result` as words."""
    line = (f"PSNR {result['psnr' + suffix]:.2f} dB (colour-corrected {result['psnr_color_corrected' + suffix]:.2f} dB), "
            f"SSIM {result['ssim' + suffix]:.4f}")
    lpips = [f"{_figure(result[key + suffix])} ({key[len('lpips_'):]})" for key in keys if key.startswith("lpips_")]
    return line + (f", LPIPS {' '.join(lpips)}" if lpips else "")


def score_views(renderer: rendering.Renderer, scales: list, config, out_dir: pathlib.Path, optimise_poses: bool,
                nets=(), log=print) -> list:
    """Every view of the test `scales` rendered, saved into `out_dir` and scored (`score_and_save`,
    LPIPS with `nets`), also with its pose fitted with `optimise_poses` (`pose_optimised_scores`);
    numbered across the scales, each with its ground truth's file and, for a multiscale scene, its scale."""
    disparity = config.ray_spacing != "linear"
    multiscale = datasets.FORMATS[config.dataset].multiscale
    images = []
    for split in scales:
        views = rendering.render_views(renderer, split.camtoworlds, split.intrinsics, split.height, split.width, config,
                                       desc="eval" if not multiscale else f"eval scale {split.scale}")
        scored = [score_and_save(len(images) + i, image, split.colors(i), out_dir, disparity, split.mask(i), nets)
                  for i, image in enumerate(views)]
        if optimise_poses:
            scored = [a | b for a, b in zip(scored, pose_optimised_scores(renderer, split, config, nets, log))]
        images += [dict(scores, ground_truth=split.files[i], **({"scale": split.scale} if multiscale else {}))
                   for i, scores in enumerate(scored)]
    return images


def write_tensorboard(exp_dir: pathlib.Path, result: dict, keys: tuple) -> None:
    """The mean figures `keys` of `result` (metrics.json's), with the PSNR of fitted test poses, as
    eval/ scalars of `exp_dir/tb` at its step; per scale too for a multiscale scene."""
    step = result["step"]
    with SummaryWriter(str(exp_dir / "tb")) as writer:
        for key in keys + ("psnr" + POSE_OPTIMISED,):
            if result.get(key) is not None:
                writer.add_scalar(f"eval/{key}", result[key], step)
        for row in result.get("per_scale", []):
            for key in keys:
                if key != "psnr_color_corrected" and row[key] is not None:
                    writer.add_scalar(f"eval/{key}_scale{row['scale']}", row[key], step)


def scale_means(scales: list, images: list, keys: tuple) -> dict:
    """{"per_scale": the mean of each figure in `keys` over each scale's views, and "<figure>_scale_mean"
    for each: the mean of the per-scale means}; an LPIPS mean is over the views and scales that have
    one (None where none has: images too small for the network)."""
    rows = []
    for split in scales:
        scored = [m for m in images if m["scale"] == split.scale]
        rows.append({"scale": split.scale, "width": split.width, "height": split.height, "count": len(scored)}
                    | {key: mean(m[key] for m in scored) for key in keys})
    return {"per_scale": rows} | {f"{key}_scale_mean": mean(r[key] for r in rows) for key in keys}


def scale_table(result: dict) -> str:
    """The per-scale means of `result` (metrics.json's) as a small text table."""
    lpips = [key for key in result["per_scale"][0] if key.startswith("lpips_")]
    head = "".join(f"  {key.upper().replace('_', ' '):<11}" for key in lpips)
    lines = [f"scale  size       views  PSNR    SSIM  {head}".rstrip()]
    for r in result["per_scale"]:
        lines.append(f"{r['scale']:<6} {r['width']:>4}x{r['height']:<5} {r['count']:>5}  {r['psnr']:6.2f}  {r['ssim']:.4f}"
                     + "".join(f"  {_figure(r[key]):<11}" for key in lpips))
    lines.append(f"mean of the scales            {result['psnr_scale_mean']:6.2f}  {result['ssim_scale_mean']:.4f}"
                 + "".join(f"  {_figure(result[key + '_scale_mean']):<11}" for key in lpips))
    return "\n".join(line.rstrip() for line in lines)


def _figure(value) -> str:
    """An LPIPS figure as text: 4 decimals, or "n/a" for a view too small for the network."""
    return "n/a" if value is None else f"{value:.4f}"
