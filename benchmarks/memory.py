"""What a capture and a training step cost in memory.

    python benchmarks/memory.py [--size=room] [--steps=10] [--capture=DIR]
    python benchmarks/memory.py --step

Without `--step`: writes a large capture in the mip-NeRF 360 layout (`benchmarks/large_capture.py`:
160 views of 1008x672 at factor 2 by default; `--size=room`, the dataset's room at factor 2, 311
views of 1557x1038), then trains `--steps` steps of configs/demo360.py on it at factors 4 and 2,
each in its own process so that their peaks do not mix, and prints per training pixel: the peak
host memory (resident set) above the process's baseline, from the two factors' difference; the
bytes the training set holds on the devices; the load time per megapixel; and the step time at
factor 2 against factor 4's.

With `--step`: compiles (does not run) the training step of configs/360.py and
configs/blender.py at their batch of 16384 rays, and of configs/360_grid.py at its 8192, with abstract inputs (no data, no parameters
in memory), and prints for each the bytes of temporaries (the activations and everything else a
step allocates), arguments (state, and 8 images of 1000x1000 as uint8: 24 MB), outputs and generated code, the parameter count
and the compile time. Each config is measured with its own `grad_accum` and `remat` and with
the earlier setting (grad_accum=1, remat=False), 360.py in float32 and in bfloat16 (what
`precision="auto"` gives on a GPU). On a CPU, XLA computes bf16 matmuls in float32, so a bf16
figure measured there is an upper bound of a GPU's.
Prints one line per figure as it is measured, then a last line of JSON.
"""

import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import flags  # noqa: E402

from mipnerf.commands.cli import run  # noqa: E402
from mipnerf.errors import MipNerfError  # noqa: E402

_STEP = flags.DEFINE_bool("step", False, "Measure the memory of the training step of configs/360.py, "
                          "configs/blender.py and configs/360_grid.py.")
_STEP_CONFIGS = flags.DEFINE_list("step_configs", None, "With --step: only these configs (e.g. 360_grid).")
_SIZE = flags.DEFINE_enum("size", "default", ["default", "room"], "The size of the capture written.")
_STEPS = flags.DEFINE_integer("steps", 10, "Training steps at each factor.")
_CAPTURE = flags.DEFINE_string("capture", "", "Where to write the capture (default: a temporary folder, removed after).")
_FACTOR = flags.DEFINE_integer("factor", 0, "Internal: measure one factor of --capture in this process.")
FACTORS = (4, 2)  # the small factor first: its figures are the baseline of the large one's

# (config module, precisions) measured by --step.
STEP_CONFIGS = (("360", ("f32", "bf16")), ("blender", ("f32", "bf16")), ("360_grid", ("f32", "bf16")))
EARLIER = dict(grad_accum=1, remat=False)  # the step before micro-batches and rematerialisation


def abstract_images(mesh, views: int = 8, height: int = 1000, width: int = 1000):
    """A `TrainImages` of `jax.ShapeDtypeStruct`s: `views` pinhole images per device, sharded over
    the mesh. Their size is the data's, in the step's arguments; the step's temporaries do not
    depend on it."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec as P

    from mipnerf.cameras import camera
    from mipnerf.training import train_images

    sharding = NamedSharding(mesh, P("data"))
    rows = lambda dtype, *shape: jax.ShapeDtypeStruct((mesh.size * shape[0],) + shape[1:], dtype, sharding=sharding)
    per_image = lambda dtype, *shape: rows(dtype, views, *shape)
    cameras = camera.Cameras(per_image(jnp.float32, 3, 4),
                             camera.Intrinsics(*(per_image(jnp.float32) for _ in range(4)),
                                               per_image(jnp.float32, camera.DISTORTION_COEFFICIENTS), per_image(jnp.bool_)),
                             per_image(jnp.int32), per_image(jnp.int32), per_image(jnp.float32), per_image(jnp.float32))
    return train_images.TrainImages(pixels=rows(jnp.uint8, views * height * width, 3), counts=rows(jnp.int32, 1),
                                    cameras=cameras, ids=per_image(jnp.int32), lossmult=None, starts=per_image(jnp.int32),
                                    run_images=per_image(jnp.int32), run_pixels=per_image(jnp.int32), lens=camera.Lens(),
                                    ndc=False)


def step_memory(config) -> dict:
    """Compiles the training step of `config` (draw, cast, render, differentiate, update) for
    abstract inputs; returns its memory figures (bytes), its parameter count and the compile time (s)."""
    import jax
    import numpy as np

    from mipnerf.model import mipnerf360
    from mipnerf.training import distributed, update

    mesh = distributed.make_mesh()
    model = mipnerf360.build_model(config)
    made = {}

    def init():
        state, made["tx"] = update.create_train_state(config, model, mesh)
        return state

    state = jax.eval_shape(init)  # shapes only: nothing is initialised
    step = update.make_train_step(config, model, made["tx"], mesh)
    start = time.perf_counter()
    analysis = step.lower(state, abstract_images(mesh)).compile().memory_analysis()
    return {"temp_bytes": analysis.temp_size_in_bytes, "argument_bytes": analysis.argument_size_in_bytes,
            "output_bytes": analysis.output_size_in_bytes, "code_bytes": analysis.generated_code_size_in_bytes,
            "params": int(sum(np.prod(x.shape) for x in jax.tree.leaves(state.params))),
            "compile_s": time.perf_counter() - start}


def step_variants(config_name: str, precisions):
    """(label, config) of each setting --step measures for configs/`config_name`.py: its own
    grad_accum and remat, and the earlier setting when it differs, in each precision."""
    import importlib

    base = importlib.import_module(f"configs.{config_name}").get_config()
    settings = {"default": {}}
    if any(base[field] != value for field, value in EARLIER.items()):
        settings["earlier"] = EARLIER
    for precision in precisions:
        for setting, overrides in settings.items():
            config = importlib.import_module(f"configs.{config_name}").get_config()
            config.update(precision=precision, **overrides)
            label = f"{config_name}.{precision}.{setting}(grad_accum={config.grad_accum},remat={config.remat})"
            yield label, config


def measure_step(figures) -> None:
    """The figures of --step, into `figures` (one line each)."""
    for config_name, precisions in STEP_CONFIGS:
        if _STEP_CONFIGS.value and config_name not in _STEP_CONFIGS.value:
            continue
        for label, config in step_variants(config_name, precisions):
            figures[f"{label}.batch_size"] = config.batch_size
            result = step_memory(config)
            for name in ("temp", "argument", "output"):
                figures[f"{label}.{name}_gb"] = result[f"{name}_bytes"] / 1e9
            figures[f"{label}.code_bytes"] = result["code_bytes"]
            figures[f"{label}.params"] = result["params"]
            figures[f"{label}.compile_s"] = result["compile_s"]


def rss_bytes() -> int:
    """The process's resident set now (Linux)."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def train_capture(capture: str, factor: int, steps: int) -> dict:
    """Loads `capture` at `factor` with configs/demo360.py and trains `steps` steps, as train.py does
    (without checkpoints); returns the figures of this process."""
    import importlib

    import jax

    from mipnerf import datasets
    from mipnerf.model import mipnerf360
    from mipnerf.training import distributed, train_images, update

    config = importlib.import_module("configs.demo360").get_config()
    config.update(dataset="colmap", data_dir=capture, factor=factor)
    mesh = distributed.make_mesh()
    model = mipnerf360.build_model(config)
    jax.block_until_ready(jax.numpy.zeros(1))
    baseline = rss_bytes()
    start = time.perf_counter()
    splits = datasets.load_scales(config, "train")
    load_s = time.perf_counter() - start
    pixels = sum(s.images.shape[0] * s.height * s.width for s in splits)
    images = train_images.put_train_images(splits, config, mesh)
    jax.block_until_ready(images.pixels)
    put_s = time.perf_counter() - start - load_s
    del splits
    device_bytes = sum(x.nbytes for x in jax.tree.leaves(images))
    state, tx = update.create_train_state(config, model, mesh)
    step = update.make_train_step(config, model, tx, mesh)
    state, stats = step(state, images)  # compiles
    jax.block_until_ready(stats)
    start = time.perf_counter()
    for _ in range(steps - 1):
        state, stats = step(state, images)
    jax.block_until_ready(stats)
    step_s = (time.perf_counter() - start) / max(steps - 1, 1)
    return {"factor": factor, "pixels": pixels, "baseline_rss_bytes": baseline,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "device_bytes": device_bytes, "load_s": load_s, "put_s": put_s, "step_s": step_s,
            "psnr": float(stats["psnr"])}


def measure_capture(figures, capture: str) -> None:
    """The capture figures, into `figures`: one process per factor of `FACTORS`."""
    runs = {}
    for factor in FACTORS:
        command = [sys.executable, __file__, f"--capture={capture}", f"--factor={factor}", f"--steps={_STEPS.value}"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            raise MipNerfError(f"factor {factor} failed: {result.stderr.strip().splitlines()[-1:]}")
        one = runs[factor] = json.loads(result.stdout.strip().splitlines()[-1])
        figures[f"f{factor}.training_mpixels"] = one["pixels"] / 1e6
        figures[f"f{factor}.load_s"] = one["load_s"]
        figures[f"f{factor}.put_on_device_s"] = one["put_s"]
        figures[f"f{factor}.peak_rss_gb"] = one["peak_rss_bytes"] / 1e9
        figures[f"f{factor}.peak_rss_above_baseline_gb"] = (one["peak_rss_bytes"] - one["baseline_rss_bytes"]) / 1e9
        figures[f"f{factor}.device_bytes_per_pixel"] = one["device_bytes"] / one["pixels"]
        figures[f"f{factor}.load_s_per_mpixel"] = one["load_s"] / (one["pixels"] / 1e6)
        figures[f"f{factor}.step_s"] = one["step_s"]
    small, large = runs[FACTORS[0]], runs[FACTORS[1]]
    extra = large["pixels"] - small["pixels"]
    figures["host_bytes_per_pixel"] = ((large["peak_rss_bytes"] - large["baseline_rss_bytes"])
                                       - (small["peak_rss_bytes"] - small["baseline_rss_bytes"])) / extra
    figures["device_bytes_per_pixel"] = (large["device_bytes"] - small["device_bytes"]) / extra
    figures["load_s_per_mpixel"] = large["load_s"] / (large["pixels"] / 1e6)
    figures["step_time_ratio"] = large["step_s"] / small["step_s"]
    figures["goals_met"] = figures["host_bytes_per_pixel"] <= 8 and figures["device_bytes_per_pixel"] <= 3.5


def main(argv):
    del argv
    import jax

    from benchmarks.common import Figures

    if _FACTOR.value:  # one factor, in a process of its own: its last line is its JSON
        print(json.dumps(train_capture(_CAPTURE.value, _FACTOR.value, _STEPS.value)))
        return
    figures = Figures()
    figures["device"] = jax.devices()[0].device_kind
    if _STEP.value:
        measure_step(figures)
    else:
        from benchmarks.large_capture import SIZES, write_large_capture

        count, width, height = SIZES[_SIZE.value]
        figures.update(size=_SIZE.value, views=count, width=width, height=height)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            capture = write_large_capture(_CAPTURE.value or tmp, count, width, height)
            figures["write_s"] = time.perf_counter() - start
            measure_capture(figures, str(capture))
    print(json.dumps(figures))


if __name__ == "__main__":
    run(main)
