"""eval.py --config.eval_splats=True: the run's splats (export.py --config.export=splats) scored on the
test views as the NeRF is, and timed against it.

On a CPU the views are drawn by the compiled kernel (`rasterize_cpu`), and the JAX rasteriser is
timed beside it; on a GPU by the JAX rasteriser."""

import pathlib
import time

import imageio.v3 as iio
import jax
import numpy as np

from mipnerf import datasets
from mipnerf.cameras import camera
from mipnerf.model import mipnerf360
from mipnerf.render import gaussians, rasterize, rendering, splat_file, video


def timed(fn, repeats: int = 3) -> tuple[float, object]:
    """(the fastest of `repeats` calls of `fn`, whose result is waited for, in seconds, after one
    call to compile it; the last call's result)."""
    result = jax.block_until_ready(fn())
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return best, result


def run_splats(config) -> gaussians.Splats:
    """The run's splats in the model's frame (`splat_file.read_run_splats`), read before any view is
    rendered: a missing or malformed file stops eval at once, in one line."""
    train = datasets.load_split(config, "train", load_images=False)
    return splat_file.read_run_splats(config.exp_dir, train)


def score_splats(config, on_host: gaussians.Splats, renderer: rendering.Renderer, scales: list,
                 out_dir: pathlib.Path, scores_of, nets=(), log=print) -> dict:
    """Renders every test view of `scales` from the splats `on_host` (`run_splats`), writes
    splats_color_NNN.png into `out_dir` and scores it (`scores_of`, LPIPS with `nets`).

    Returns:
      {"count": splats, "sh_degree", "rasteriser" ("cpu kernel" or "jax"), each figure's mean,
      "seconds_per_view" (the median over the views of the fastest of 3 renders, binning plan
      included), "fps", "jax_seconds_per_view" (the JAX rasteriser's, likewise), "nerf_seconds_per_view"
      (the NeRF's first test view, the fastest of 2), "speedup" (the NeRF's time over the splats'),
      "images": [per view figures]}.
    """
    splats = jax.device_put(on_host)
    background = np.asarray(mipnerf360.background_color(config), np.float32)
    on_cpu = jax.default_backend() == "cpu"
    if on_cpu:
        from mipnerf.render import rasterize_cpu  # numba, compiled on first use
        kernel_scene = rasterize_cpu.scene(on_host)
    images, seconds, jax_seconds = [], [], []
    for split in scales:
        for i in range(len(split.camtoworlds)):
            cam = rendering.view_camera(split.camtoworlds[i], split.intrinsics, i, split.width, split.height,
                                        *rendering.ray_bounds(config))
            draw = lambda: rasterize.render(splats, cam, split.width, split.height, background).rgb
            took, rgb = timed(draw)
            jax_seconds.append(took)
            if on_cpu:
                took, (rgb, _) = timed(lambda: rasterize_cpu.render(kernel_scene, cam, split.width, split.height,
                                                                    background))
            seconds.append(took)
            rgb = np.asarray(rgb)
            name = f"splats_color_{len(images):03d}.png"
            iio.imwrite(out_dir / name, video.to_uint8(rgb))
            images.append(dict(color=name, **scores_of(rgb, split.colors(i), split.mask(i), nets)))
    first = scales[0]
    cam = rendering.view_camera(first.camtoworlds[0], first.intrinsics, 0, first.width, first.height,
                                *rendering.ray_bounds(config))
    lens = camera.Lens.of(first.intrinsics)
    nerf, _ = timed(lambda: rendering.render_image(renderer.render_fn, renderer.params, cam, lens, config.render_chunk,
                                                   renderer.mesh).rgb, repeats=2)
    per_view = float(np.median(seconds))
    keys = [k for k in images[0] if k != "color"]
    means = {k: (None if any(m[k] is None for m in images) else float(np.mean([m[k] for m in images]))) for k in keys}
    return dict(count=int(len(splats.means)), sh_degree=int(splats.sh_degree),
                rasteriser="cpu kernel" if on_cpu else "jax", **means, seconds_per_view=per_view, fps=1.0 / per_view,
                jax_seconds_per_view=float(np.median(jax_seconds)), nerf_seconds_per_view=nerf,
                speedup=nerf / per_view, images=images)
