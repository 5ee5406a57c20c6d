"""Scale and waste: a sharded update equals one device's, two processes train like one, nothing
recompiles, and memory stays flat."""

import logging
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from helpers import ROOT, setup_training, tiny_config
from mipnerf import datasets
from mipnerf.cameras import camera
from mipnerf.errors import ConfigError
from mipnerf.model import mipnerf360
from mipnerf.render import rendering
from mipnerf.store.checkpoints import Checkpointer
from mipnerf.training import distributed, update

SHARDED_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import jax, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from helpers import tiny_config
from mipnerf import datasets
from mipnerf.cameras.camera import Rays
from mipnerf.model import mipnerf360
from mipnerf.training import distributed, update
assert jax.device_count() == 4, jax.devices()
config = tiny_config({scene!r}, {exp!r})
split = datasets.load_split(config, "train")
rays = datasets.split_rays(split, config)
flat = lambda x: x.reshape(-1, x.shape[-1])
idx = np.random.default_rng(0).integers(0, split.images[..., 0].size, config.batch_size)
batch = update.RayData(Rays(*(flat(x)[idx] for x in rays)), flat(split.colors(slice(None)))[idx])
model = mipnerf360.build_model(config)
result = {{}}
for devices in (1, 4):
    mesh = distributed.make_mesh(jax.devices()[:devices])
    state, tx = update.create_train_state(config, model, mesh)
    apply_update = jax.jit(update.make_update(config, model, tx))
    sharded = jax.device_put(batch, NamedSharding(mesh, P("data")))
    for i in range(3):
        state, stats = apply_update(state, sharded, jax.random.PRNGKey(i))
    for k, x in enumerate(jax.tree.leaves(state.params)):
        result[f"{{devices}}_{{k}}"] = np.asarray(x)
    result[f"{{devices}}_loss"] = np.asarray(stats["loss"])
np.savez({out!r}, **result)
"""


def cpu_env(devices: int) -> dict:
    return dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")


def test_update_sharded_over_4_devices_matches_one_device(tiny_scene, tmp_path):
    out = tmp_path / "params.npz"
    script = SHARDED_SCRIPT.format(tests=str(ROOT / "tests"), scene=str(tiny_scene), exp=str(tmp_path), out=str(out))
    subprocess.run([sys.executable, "-c", script], check=True, env=cpu_env(4), cwd=ROOT, timeout=300)
    result = np.load(out)
    keys = sorted(k[2:] for k in result.files if k.startswith("1_"))
    assert len(keys) > 5 and all(f"4_{k}" in result.files for k in keys)
    for k in keys:
        np.testing.assert_allclose(result[f"4_{k}"], result[f"1_{k}"], rtol=1e-4, atol=1e-6, err_msg=k)
    assert not np.allclose(result["1_0"], 0)  # the parameters were trained, not left at zero


def train_cmd(scene, exp_dir, *extra) -> list:
    return [sys.executable, "train.py", "--config=tests/helpers.py", f"--config.data_dir={scene}",
            f"--config.exp_dir={exp_dir}", "--config.max_steps=6", "--config.checkpoint_every=3", *extra]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_like_one_process_on_the_same_global_batch(tiny_scene, tmp_path):
    # One process with 2 devices, and 2 processes with 1 device each, hold the same shards of
    # rays (each process loads its half of the images) and so draw the same global batches.
    env = dict(cpu_env(2), MIPNERF_CACHE=str(tmp_path / "cache"))
    single = subprocess.run(train_cmd(tiny_scene, tmp_path / "one"), env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    assert any((tmp_path / "cache" / "jax").iterdir())  # the compiled step is kept for the next start
    address = f"127.0.0.1:{free_port()}"
    procs = [subprocess.Popen(train_cmd(tiny_scene, tmp_path / "two", f"--config.coordinator_address={address}",
                                        "--config.num_processes=2", f"--config.process_id={i}"),
                              env=cpu_env(1), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    assert "train:" in outputs[0][1] and "train:" not in outputs[1][1]  # only process 0 shows progress
    assert (tmp_path / "two" / "tb").is_dir() and (tmp_path / "two" / "config.json").is_file()

    config = tiny_config(tiny_scene, tmp_path)
    mesh = distributed.make_mesh(jax.devices()[:1])
    target, _ = update.create_train_state(config, mipnerf360.build_model(config), mesh)
    one = Checkpointer(tmp_path / "one" / "checkpoints").restore(target, 6)
    two = Checkpointer(tmp_path / "two" / "checkpoints").restore(target, 6)
    assert int(two.step) == 6
    for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(two.params)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


class CompileLog(logging.Handler):
    """Collects the names of the functions that XLA compiles while `jax.log_compiles` is on."""

    def __init__(self):
        super().__init__()
        self.names = []

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Compiling "):
            name = message.split()[1]  # "jit(f)", or "f" in older JAX versions
            self.names.append(name[4:-1] if name.startswith("jit(") else name)


def compiles_during(fn) -> list:
    handler = CompileLog()
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles():
            fn()
    finally:
        logger.removeHandler(handler)
    return handler.names


def test_training_steps_and_render_chunks_compile_once(tiny_scene, tmp_path):
    config = tiny_config(tiny_scene, tmp_path)
    mesh, _, data, model, state, tx = setup_training(config)
    step = update.make_train_step(config, model, tx, mesh)
    holder = [state]

    def run_steps(n):
        for _ in range(n):
            holder[0], stats = step(holder[0], data)
        jax.block_until_ready(stats)

    assert compiles_during(lambda: run_steps(1)).count("train_step") == 1
    assert compiles_during(lambda: run_steps(5)) == []
    assert step._cache_size() == 1

    render_fn = rendering.make_render_fn(config, model)
    split = datasets.load_split(config, "train")
    cameras, lens = datasets.split_cameras(split, config), camera.Lens.of(split.intrinsics)
    view = lambda i: jax.tree.map(lambda x: x[i], cameras)  # 16x16 = 256 pixels: 4 chunks of 64
    render = lambda i: rendering.render_image(render_fn, holder[0].params, view(i), lens, 64, mesh)
    assert compiles_during(lambda: render(0)).count("render_pixels") == 1
    assert compiles_during(lambda: [render(i) for i in range(1, 3)]) == []
    assert render_fn._cache_size() == 1


def test_memory_stays_flat_over_training_steps(tiny_scene, tmp_path):
    config = tiny_config(tiny_scene, tmp_path)
    mesh, _, data, model, state, tx = setup_training(config)
    step = update.make_train_step(config, model, tx, mesh)

    def live_buffers():
        arrays = jax.live_arrays()
        return len(arrays), sum(a.nbytes for a in arrays)

    state, stats = step(state, data)
    state, stats = step(state, data)
    jax.block_until_ready(stats)
    before = live_buffers()
    for _ in range(20):
        state, stats = step(state, data)
    jax.block_until_ready(stats)
    assert live_buffers() == before


def test_distributed_settings_come_from_the_config_or_the_environment(monkeypatch):
    from mipnerf.training import distributed

    config = tiny_config("", "")
    for variable in distributed.ENV.values():
        monkeypatch.delenv(variable, raising=False)
    assert distributed.settings(config) is None  # a single process: jax.distributed is not started
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:1234")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "4")
    monkeypatch.setenv("JAX_PROCESS_ID", "3")
    assert distributed.settings(config) == dict(coordinator_address="10.0.0.1:1234", num_processes=4, process_id=3)
    config.process_id = 1  # a field overrides its variable
    assert distributed.settings(config)["process_id"] == 1
    monkeypatch.setenv("JAX_NUM_PROCESSES", "four")
    with pytest.raises(ConfigError, match="JAX_NUM_PROCESSES='four'"):
        distributed.settings(config)
