"""Throughput of training and rendering against the machine's matmul and memory ceilings.

    python benchmarks/throughput.py --config=configs/blender.py [--config.batch_size=1024] [--steps=5]

NeRF training is MLP-bound, so the ceiling is a jitted matmul of the MLP's shapes, [N, W] x
[W, W], in the MLPs' compute dtype (float32 on a CPU, bfloat16 on a GPU by default). FLOPs of
the training step and of the render function come from XLA's cost analysis of the compiled
programs. Hash-grid fields (`field="grid"`) are bound by gathers, not matmuls: for them the
figure is the bytes XLA's cost analysis counts as accessed per ray, and the achieved bytes/s
against a copy's bandwidth measured in the same run (also printed for MLPs). With no `data_dir` a built-in scene supplies the rays: demo360 for the capture configs
(360.py, llff.py), else demo.
Prints one line per figure as it is measured, then a last line of JSON.
"""

import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import flags  # noqa: E402

from mipnerf.commands.cli import define_config, run  # noqa: E402

_CONFIG = define_config("configs/blender.py")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed training steps (and render calls), after one warm-up.")


def compile_with_costs(jitted, *args):
    """Compiles `jitted` for `args` once; returns the compiled function, its FLOPs and bytes
    accessed per call (XLA's cost analysis) and the compile time in seconds."""
    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    seconds = time.perf_counter() - start
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    return compiled, float(analysis["flops"]), float(analysis.get("bytes accessed", 0.0)), seconds


def time_calls(fn, args_fn, n: int) -> float:
    """Seconds per call of `fn(*args_fn())` after one warm-up call; `args_fn` threads state."""
    import jax

    jax.block_until_ready(fn(*args_fn()))
    start = time.perf_counter()
    out = None
    for _ in range(n):
        out = fn(*args_fn())
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / n


def matmul_ceiling(width: int, dtype, rows: int, n: int = 10, repeats: int = 3) -> float:
    """GFLOP/s of a jitted [rows, width] x [width, width] matmul in `dtype`: the best of `repeats`
    rounds of `n` calls, since a ceiling is what the machine can do, not its average under noise."""
    import jax

    a = jax.random.normal(jax.random.PRNGKey(0), (rows, width), dtype)
    b = jax.random.normal(jax.random.PRNGKey(1), (width, width), dtype)
    f = jax.jit(lambda a, b: a @ b)
    return max(2 * rows * width * width / time_calls(f, lambda: (a, b), n) / 1e9 for _ in range(repeats))


def copy_bandwidth(megabytes: int, n: int = 10, repeats: int = 3) -> float:
    """GB/s of a jitted elementwise pass over `megabytes` of float32 (read once, written once): the best of `repeats`."""
    import jax

    x = jax.random.normal(jax.random.PRNGKey(0), (megabytes * 2**18,), jax.numpy.float32)
    f = jax.jit(lambda x: x * 1.0001)
    return max(2 * x.nbytes / time_calls(f, lambda: (x,), n) / 1e9 for _ in range(repeats))


def main(argv):
    del argv
    import jax

    from benchmarks.common import Figures, peak_memory_mb
    from mipnerf import datasets
    from mipnerf.cameras import camera
    from mipnerf.model import mipnerf360
    from mipnerf.render import rendering
    from mipnerf.training import distributed, train_images, update

    config = _CONFIG.value
    if not config.data_dir:  # the built-in scene of the config's kind: demo360 for captures
        config.unlock()
        config.dataset = "demo360" if datasets.FORMATS[config.dataset].capture else "demo"
        config.lock()
    n = _STEPS.value
    figures = Figures()
    figures.update(device=jax.devices()[0].device_kind, devices=jax.device_count(), precision=config.precision,
                   batch_size=config.batch_size)
    # The ceiling is a matmul in the MLPs' compute dtype: float32 on a CPU, bfloat16 on a GPU.
    dtype = mipnerf360.compute_dtype(config.precision)
    figures["matmul_dtype"] = jax.numpy.dtype(dtype).name
    rows = 1 << 16 if jax.default_backend() == "cpu" else 1 << 20
    figures["matmul_gflops"] = matmul_ceiling(config.nerf_width, dtype, rows)
    figures["copy_gbytes_per_s"] = copy_bandwidth(256 if jax.default_backend() == "cpu" else 4096)

    mesh = distributed.make_mesh()
    split = datasets.load_split(config, "train")
    data = train_images.put_train_images([split], config, mesh)
    model = mipnerf360.build_model(config)
    state, tx = update.create_train_state(config, model, mesh)
    step, train_flops, train_bytes, figures["train_compile_s"] = compile_with_costs(
        update.make_train_step(config, model, tx, mesh), state, data)
    holder = [state]

    def train_once(state, data):
        holder[0], stats = step(state, data)
        return stats

    seconds = time_calls(train_once, lambda: (holder[0], data), n)
    figures["train_rays_per_s"] = config.batch_size / seconds
    figures["train_flops_per_ray"] = train_flops / config.batch_size
    figures["train_gflops"] = train_flops / seconds / 1e9
    figures["train_mfu"] = figures["train_gflops"] / figures["matmul_gflops"]
    figures["train_bytes_per_ray"] = train_bytes / config.batch_size
    figures["train_bandwidth_fraction"] = train_bytes / seconds / 1e9 / figures["copy_gbytes_per_s"]

    # One chunk of the first training view's pixels, its rays cast inside the render function.
    view = jax.tree.map(lambda x: x[0], datasets.split_cameras(split, config))
    pixels = jax.numpy.arange(config.render_chunk, dtype=jax.numpy.int32) % (split.height * split.width)
    render_fn, render_flops, render_bytes, figures["render_compile_s"] = compile_with_costs(
        rendering.make_render_fn(config, model), holder[0].params, view, pixels, camera.Lens.of(split.intrinsics))
    seconds = time_calls(render_fn, lambda: (holder[0].params, view, pixels), n)
    figures["render_rays_per_s"] = config.render_chunk / seconds
    figures["render_flops_per_ray"] = render_flops / config.render_chunk
    figures["render_gflops"] = render_flops / seconds / 1e9
    figures["render_mfu"] = figures["render_gflops"] / figures["matmul_gflops"]
    figures["render_bytes_per_ray"] = render_bytes / config.render_chunk
    figures["render_bandwidth_fraction"] = render_bytes / seconds / 1e9 / figures["copy_gbytes_per_s"]
    figures["peak_memory_mb"] = peak_memory_mb()
    print(json.dumps(figures))


if __name__ == "__main__":
    run(main)
