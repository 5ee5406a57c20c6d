"""Where a render chunk's time goes: the proposal MLP, the NeRF MLP, the IPE, one dense layer.

    python benchmarks/breakdown.py --config=configs/blender.py [--config.render_chunk=2048]

Times each piece of the model alone on `render_chunk` rays (the best of 3 calls after a warm-up)
next to the whole render function, so that what is left over is sampling and compositing.
Prints one line per figure, then a last line of JSON.
"""

import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from mipnerf.commands.cli import define_config, run  # noqa: E402

_CONFIG = define_config("configs/blender.py")


def best_seconds(fn, *args, repeats: int = 3) -> float:
    import jax

    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best


def main(argv):
    del argv
    import jax
    import jax.numpy as jnp

    from benchmarks.common import Figures
    from mipnerf.cameras import camera
    from mipnerf.model import coord, mipnerf360
    from mipnerf.training import distributed, update

    config = _CONFIG.value
    model = mipnerf360.build_model(config)
    state, _ = update.create_train_state(config, model, distributed.make_mesh())
    params = state.params["params"]
    rays_n, prop_n, nerf_n = config.render_chunk, sum(config.num_prop_samples), config.num_nerf_samples
    key = jax.random.PRNGKey(0)
    viewdirs = jax.random.normal(key, (rays_n, 3))
    viewdirs = viewdirs / jnp.linalg.norm(viewdirs, axis=-1, keepdims=True)
    origins = -4.0 * viewdirs
    rays = camera.Rays(origins, viewdirs, viewdirs, jnp.full((rays_n, 1), 1e-3),
                       jnp.full((rays_n, 1), config.near), jnp.full((rays_n, 1), config.far))
    gaussians = lambda n: (jax.random.normal(key, (rays_n, n, 3)), jnp.full((rays_n, n, 3), 1e-4))
    prop = jax.jit(lambda m, v: model.prop_fields[0].apply({"params": params["prop_mlp"]}, m, v)[0])
    nerf = jax.jit(lambda m, v, d: model.nerf_field.apply({"params": params["nerf_mlp"]}, m, v, d))
    ipe = jax.jit(lambda m, v: coord.integrated_pos_enc(m, v, config.min_deg_point, config.max_deg_point))
    x = jax.random.normal(key, (rays_n * prop_n, config.prop_width))
    w = jax.random.normal(key, (config.prop_width, config.prop_width))

    figures = Figures()
    figures.update(device=jax.devices()[0].device_kind, rays=rays_n)
    render_rays = jax.jit(lambda params, rays: model.apply(params, None, rays, 1.0, mipnerf360.background_color(config)))
    figures["render_s"] = best_seconds(render_rays, state.params, rays)
    figures["prop_mlp_s"] = best_seconds(prop, *gaussians(prop_n))
    figures["nerf_mlp_s"] = best_seconds(nerf, *gaussians(nerf_n), viewdirs)
    figures["other_s"] = figures["render_s"] - figures["prop_mlp_s"] - figures["nerf_mlp_s"]
    figures["prop_ipe_s"] = best_seconds(ipe, *gaussians(prop_n))
    figures["prop_layer_matmul_s"] = best_seconds(jax.jit(lambda x, w: x @ w), x, w)
    figures["prop_layer_matmul_relu_s"] = best_seconds(jax.jit(lambda x, w: jax.nn.relu(x @ w)), x, w)
    print(json.dumps(figures))


if __name__ == "__main__":
    run(main)
