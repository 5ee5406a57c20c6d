"""Time to quality: trains two configs back to back on the same machine and prints test PSNR
against training wall time for each.

    python benchmarks/compare.py [--base=configs/demo.py] [--fast=configs/demo_grid.py] [--every=100] [--views=5]

Each config trains from scratch; every `--every` steps the clock stops while the first `--views`
test views are rendered and scored. The wall time counts every training step, compilation
included, and nothing else. The target is the base config's PSNR after its last step; the
figure is how long the fast config takes to reach it, as a fraction of the base's wall time
(interpolated between evaluations). Prints one line per evaluation, a summary, one line of JSON,
and writes the curves as an SVG plot (--plot).
"""

import json
import math
import pathlib
import runpy
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags, logging  # noqa: E402

_BASE = flags.DEFINE_string("base", "configs/demo.py", "the reference config")
_FAST = flags.DEFINE_string("fast", "configs/demo_grid.py", "the config to compare with it")
_EVERY = flags.DEFINE_integer("every", 100, "steps between evaluations")
_VIEWS = flags.DEFINE_integer("views", 5, "test views scored at each evaluation")
_PLOT = flags.DEFINE_string("plot", "", "where to write the SVG plot of PSNR against wall time (empty: nowhere)")


def load_config(path: str):
    return runpy.run_path(path)["get_config"]()


def train_curve(config, every: int, views: int, log=print) -> list[dict]:
    """Trains `config` from scratch; returns [{"step", "train_s", "psnr"}, ...] at every `every` steps and the
    last, which also has "ssim", "lpips_alex" and "lpips_vgg" (LPIPS unless `eval_lpips` is off)."""
    import jax

    from mipnerf import datasets
    from mipnerf.commands import evaluate
    from mipnerf.model import mipnerf360
    from mipnerf.render import rendering
    from mipnerf.training import distributed, train_images, update

    mesh = distributed.make_mesh()
    data = train_images.put_train_images(datasets.load_scales(config, "train"), config, mesh)
    test = datasets.load_split(config, "test")
    model = mipnerf360.build_model(config)
    state, tx = update.create_train_state(config, model, mesh)
    step_fn = update.make_train_step(config, model, tx, mesh)
    render_fn = rendering.make_render_fn(config, model)
    curve, train_s = [], 0.0
    for step in range(1, config.max_steps + 1):
        tic = time.time()
        state, stats = step_fn(state, data)
        if step % every == 0 or step == config.max_steps:
            jax.block_until_ready(stats)
        train_s += time.time() - tic
        if step % every == 0 or step == config.max_steps:
            renderer = rendering.Renderer(render_fn, state.params, step, mesh)
            if step < config.max_steps:
                curve.append({"step": step, "train_s": train_s, "psnr": evaluate.mean_psnr(renderer, test, config, views)})
                log(f"  step {step:5d}  {train_s:7.1f} s  test PSNR {curve[-1]['psnr']:.2f} dB")
            else:
                nets = evaluate.lpips_nets(config)
                scores = evaluate.mean_scores(renderer, test, config, views, nets)
                curve.append({"step": step, "train_s": train_s} | {k: v for k, v in scores.items()
                                                                   if k != "psnr_color_corrected"})
                log(f"  step {step:5d}  {train_s:7.1f} s  test {evaluate.summary(scores, evaluate.figures(nets))}")
    return curve


def time_to_reach(curve: list[dict], target: float):
    """The training time at which `curve` first reaches `target` PSNR, linear between points; None if never."""
    previous = {"train_s": 0.0, "psnr": None}
    for point in curve:
        if point["psnr"] >= target:
            if previous["psnr"] is None or previous["psnr"] >= target:
                return point["train_s"]
            frac = (target - previous["psnr"]) / (point["psnr"] - previous["psnr"])
            return previous["train_s"] + frac * (point["train_s"] - previous["train_s"])
        previous = point
    return None


def svg_plot(curves: dict, target: float) -> str:
    """PSNR against training wall time, one polyline per config, with the target as a dashed line."""
    width, height, pad = 640, 400, 60
    t_max = 50 * math.ceil(max(p["train_s"] for c in curves.values() for p in c) / 50)  # round ticks
    lo = math.floor(min(p["psnr"] for c in curves.values() for p in c))
    hi = lo + 5 * math.ceil((max(max(p["psnr"] for c in curves.values() for p in c), target) - lo) / 5)
    x = lambda t: pad + (width - 2 * pad) * t / t_max
    y = lambda v: height - pad - (height - 2 * pad) * (v - lo) / (hi - lo)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
             f'<text x="{width / 2}" y="{height - 15}" text-anchor="middle">training wall time (s)</text>',
             f'<text x="15" y="{height / 2}" transform="rotate(-90 15 {height / 2})" text-anchor="middle">'
             f'test PSNR (dB)</text>',
             f'<line x1="{pad}" y1="{y(target):.1f}" x2="{width - pad}" y2="{y(target):.1f}" stroke="gray" '
             f'stroke-dasharray="4 4"/>']
    for i in range(6):
        t, v = t_max * i / 5, lo + (hi - lo) * i / 5
        parts.append(f'<text x="{x(t):.1f}" y="{height - pad + 18}" text-anchor="middle">{t:.0f}</text>')
        parts.append(f'<text x="{pad - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    for (name, curve), color in zip(curves.items(), ("#1f77b4", "#d62728")):
        points = " ".join(f"{x(p['train_s']):.1f},{y(p['psnr']):.1f}" for p in curve)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts += [f'<circle cx="{x(p["train_s"]):.1f}" cy="{y(p["psnr"]):.1f}" r="3" fill="{color}"/>' for p in curve]
        row = 1 + list(curves).index(name)
        parts.append(f'<text x="{width - pad - 200}" y="{height - pad - 20 * row}" fill="{color}">{name}</text>')
    return "\n".join(parts + ["</svg>"])


def main(argv):
    del argv
    import jax

    logging.set_verbosity(logging.WARNING)
    curves = {}
    for path in (_BASE.value, _FAST.value):
        print(f"{path}:", flush=True)
        curves[path] = train_curve(load_config(path), _EVERY.value, _VIEWS.value, log=lambda s: print(s, flush=True))
    base, fast = curves[_BASE.value], curves[_FAST.value]
    target = base[-1]["psnr"]
    reached = time_to_reach(fast, target)
    result = {"device": jax.devices()[0].device_kind, "views": _VIEWS.value, "target_psnr": target,
              "base": _BASE.value, "base_s": base[-1]["train_s"], "fast": _FAST.value,
              "fast_s_to_target": reached, "fraction": None if reached is None else reached / base[-1]["train_s"],
              "fast_final_psnr": fast[-1]["psnr"], "fast_s": fast[-1]["train_s"], "curves": curves}
    print(f"target {target:.2f} dB ({_BASE.value} after {base[-1]['step']} steps, {base[-1]['train_s']:.0f} s); "
          + (f"{_FAST.value} reaches it in {reached:.0f} s: {result['fraction']:.2f} of the time" if reached is not None
             else f"{_FAST.value} does not reach it ({fast[-1]['psnr']:.2f} dB after {fast[-1]['train_s']:.0f} s)"))
    if _PLOT.value:
        pathlib.Path(_PLOT.value).write_text(svg_plot(curves, target))
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
