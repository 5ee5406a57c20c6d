"""What each of Zip-NeRF's pieces buys on the built-in unbounded scene: configs/demo360_grid.py with
every piece on, with each piece turned off in turn, and with none (the grid model as it was before
them), over several seeds, at equal steps; and the flicker of each along the zoom path.

    python benchmarks/zip_ablation.py [--seeds=3] [--variants=all,-interlevel,...] [--config.max_steps=N]

Pose refinement and per-image appearance are off (Zip-NeRF's published setting, configs/360_grid.py).
A piece off takes back the values configs/demo360.py and configs/demo_grid.py give its fields
(`configs.demo360_grid.ZIP_PIECES`). For each variant it prints the mean and spread (min to max)
over the seeds of the test PSNR, SSIM and LPIPS (AlexNet) and the seconds per step; then, for the
first seed's run, the zoom path's flicker (`flicker`). A last line of JSON holds every figure.
"""

import json
import pathlib
import sys
import tempfile
import time

import numpy as np
from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks.common import Figures  # noqa: E402
from mipnerf.commands.cli import define_config, run  # noqa: E402

_CONFIG = define_config("configs/demo360_grid.py")
_SEEDS = flags.DEFINE_integer("seeds", 3, "seeds per variant (0, 1, ...)")
_VARIANTS = flags.DEFINE_list("variants", None, "variants to run (default: all, each -PIECE, none): 'all', "
                              "'none', '-PIECE' (that piece off) or '+PIECE' (that piece alone) for each piece "
                              "of configs.demo360_grid.ZIP_PIECES")
_FRAMES = flags.DEFINE_integer("flicker_frames", 30, "frames of the zoom path for the flicker figure (0: none)")
_REFERENCE_SAMPLES = 4  # the flicker reference renders with this many times the samples of every round


def variant_config(config, name: str):
    """`config` (demo360_grid's) with the pieces of variant `name` off: 'all' keeps every piece,
    'none' takes every piece off, '-PIECE' takes that one off, '+PIECE' keeps that one alone."""
    import importlib

    from configs import demo360_grid, demo_grid

    before = importlib.import_module("configs.demo360").get_config()
    grid = demo_grid.get_config()
    for field in demo360_grid.GRID_FIELDS:
        before[field] = grid[field]
    pieces = demo360_grid.ZIP_PIECES
    if name in ("all", "none"):
        off = [] if name == "all" else list(pieces)
    else:
        off = [name[1:]] if name.startswith("-") else [p for p in pieces if p != name[1:]]
    c = config.copy_and_resolve_references()
    for piece in off:
        for field in pieces[piece]:
            c[field] = before[field]
    c.pose_refine, c.appearance_dim, c.appearance_affine = False, 0, False
    return c


def variants() -> list[str]:
    from configs import demo360_grid

    known = ["all"] + [f"-{piece}" for piece in demo360_grid.ZIP_PIECES] + ["none"]
    chosen = _VARIANTS.value or known
    known += [f"+{piece}" for piece in demo360_grid.ZIP_PIECES]
    unknown = [v for v in chosen if v not in known]
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; expected some of {known}")
    return chosen


def flicker(renderer, reference, config, frames: int) -> dict:
    """Frame-to-frame change along the zoom path (a camera pulling straight back from the scene's
    centre), of the colour and of the disparity 1 / (1 + depth) (in [0, 1], unlike 1 / depth, which
    near 0 makes huge): the mean absolute difference of
    successive frames, the model's and a reference's (the same parameters with
    `_REFERENCE_SAMPLES` times the samples, which aliases far less along the ray), and the
    flicker: the mean absolute difference of the two changes, what the model's frames change
    that the reference's do not."""
    from mipnerf import datasets
    from mipnerf.cameras import orbits
    from mipnerf.render import rendering

    train = datasets.load_split(config, "train", load_images=False)
    poses = orbits.zoom_path(train.camtoworlds, frames)
    cam = train.intrinsics.take(0).without_distortion()
    stacks = []
    for r in (renderer, reference):
        images = list(rendering.render_views(r, poses, cam, train.height, train.width, config, desc="zoom"))
        rgb = np.stack([im.rgb for im in images])
        disparity = 1 / (1 + np.maximum(np.stack([im.depth for im in images]), 0.0))
        stacks.append((np.diff(rgb, axis=0), np.diff(disparity, axis=0)))
    (model_rgb, model_disp), (ref_rgb, ref_disp) = stacks
    return dict(change_rgb=float(np.mean(np.abs(model_rgb))), reference_change_rgb=float(np.mean(np.abs(ref_rgb))),
                flicker_rgb=float(np.mean(np.abs(model_rgb - ref_rgb))),
                flicker_disparity=float(np.mean(np.abs(model_disp - ref_disp))))


def run_once(config, seed: int, with_flicker: bool) -> dict:
    from mipnerf import datasets
    from mipnerf.commands import evaluate, train
    from mipnerf.model import mipnerf360
    from mipnerf.render import rendering
    from mipnerf.training import distributed

    config = config.copy_and_resolve_references()
    with tempfile.TemporaryDirectory() as tmp:
        config.exp_dir, config.seed = tmp, seed
        datasets.load_split(config, "train")  # renders the scene once, outside the timing
        start = time.time()
        state = train.train(config, log=lambda s: None)
        seconds = time.time() - start
    mesh = distributed.make_mesh()
    model = mipnerf360.build_model(config)
    renderer = rendering.Renderer(rendering.make_render_fn(config, model), state.params, int(state.step), mesh)
    scores = evaluate.mean_scores(renderer, datasets.load_split(config, "test"), config,
                                  nets=evaluate.lpips_nets(config))
    result = dict(psnr=scores["psnr"], ssim=scores["ssim"], lpips_alex=scores.get("lpips_alex"),
                  s_per_step=seconds / config.max_steps)
    if with_flicker:
        dense = config.copy_and_resolve_references()
        dense.num_prop_samples = tuple(n * _REFERENCE_SAMPLES for n in config.num_prop_samples)
        dense.num_nerf_samples = config.num_nerf_samples * _REFERENCE_SAMPLES
        reference = renderer._replace(render_fn=rendering.make_render_fn(dense, mipnerf360.build_model(dense)))
        result.update(flicker(renderer, reference, config, _FRAMES.value))
    return result


def main(argv):
    del argv
    base = _CONFIG.value
    figures, table = Figures(), {}
    for name in variants():
        config = variant_config(base, name)
        runs = [run_once(config, seed, with_flicker=seed == 0 and _FRAMES.value > 1) for seed in range(_SEEDS.value)]
        row = {}
        for key in ("psnr", "ssim", "lpips_alex", "s_per_step"):
            values = [r[key] for r in runs if r.get(key) is not None]
            if values:
                row[key] = dict(mean=float(np.mean(values)), min=float(np.min(values)), max=float(np.max(values)))
                figures[f"{name}/{key}"] = (f"{np.mean(values):.4g} ({np.min(values):.4g} to {np.max(values):.4g}, "
                                            f"{len(values)} seeds)")
        for key in ("change_rgb", "reference_change_rgb", "flicker_rgb", "flicker_disparity"):
            if key in runs[0]:
                row[key] = runs[0][key]
                figures[f"{name}/{key}"] = runs[0][key]
        table[name] = row
    print(json.dumps(dict(steps=base.max_steps, seeds=_SEEDS.value, variants=table)))


if __name__ == "__main__":
    run(main)
