"""Device memory of the training step, from XLA's memory analysis of the compiled program.

    python benchmarks/memory.py --step

With `--step`: compiles (does not run) the training update of configs/360.py and
configs/blender.py at their batch of 16384 rays, with abstract inputs (no data, no parameters
in memory), and prints for each the bytes of temporaries (the activations and everything else a
step allocates), arguments (state and batch), outputs and generated code, the parameter count
and the compile time. Each config is measured with its own `grad_accum` and `remat` and with
the earlier setting (grad_accum=1, remat=False), 360.py in float32 and in bfloat16 (what
`precision="auto"` gives on a GPU). On a CPU, XLA computes bf16 matmuls in float32, so a bf16
figure measured there is an upper bound of a GPU's.
Prints one line per figure as it is measured, then a last line of JSON.
"""

import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import flags  # noqa: E402

from mipnerf.cli import run  # noqa: E402
from mipnerf.errors import MipNerfError  # noqa: E402

_STEP = flags.DEFINE_bool("step", False, "Measure the memory of the training step of configs/360.py and configs/blender.py.")

# (config module, precisions) measured by --step.
STEP_CONFIGS = (("360", ("f32", "bf16")), ("blender", ("f32", "bf16")))
EARLIER = dict(grad_accum=1, remat=False)  # the step before micro-batches and rematerialisation


def abstract_batch(config, mesh):
    """A `RayData` of `jax.ShapeDtypeStruct`s: `config.batch_size` rays sharded over the mesh."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec as P

    from mipnerf import training
    from mipnerf.camera import Rays

    sharding = NamedSharding(mesh, P("data"))
    rows = lambda width: jax.ShapeDtypeStruct((config.batch_size, width), jnp.float32, sharding=sharding)
    return training.RayData(Rays(rows(3), rows(3), rows(3), rows(1), rows(1), rows(1)), rows(3), None)


def step_memory(config) -> dict:
    """Compiles the training update of `config` for abstract inputs; returns its memory figures
    (bytes), its parameter count and the compile time (s)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mipnerf import models, training

    mesh = training.make_mesh()
    training.check_batch_divides(config.batch_size, mesh, config.grad_accum)
    model = models.build_model(config)
    made = {}

    def init():
        state, made["tx"] = training.create_train_state(config, model, mesh)
        return state

    state = jax.eval_shape(init)  # shapes only: nothing is initialised
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    update = jax.jit(training.make_update(config, model, made["tx"]), donate_argnums=(0,))
    start = time.perf_counter()
    analysis = update.lower(state, abstract_batch(config, mesh), key).compile().memory_analysis()
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
        for label, config in step_variants(config_name, precisions):
            figures[f"{label}.batch_size"] = config.batch_size
            result = step_memory(config)
            for name in ("temp", "argument", "output"):
                figures[f"{label}.{name}_gb"] = result[f"{name}_bytes"] / 1e9
            figures[f"{label}.code_bytes"] = result["code_bytes"]
            figures[f"{label}.params"] = result["params"]
            figures[f"{label}.compile_s"] = result["compile_s"]


def main(argv):
    del argv
    import jax

    from benchmarks.common import Figures

    if not _STEP.value:
        raise MipNerfError("nothing to measure: pass --step")
    figures = Figures()
    figures["device"] = jax.devices()[0].device_kind
    measure_step(figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    run(main)
