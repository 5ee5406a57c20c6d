"""The built-in unbounded scene, read through the COLMAP loader, with a model sized for a 2-core CPU.

    python train.py --config=configs/demo360.py

The mip-NeRF 360 model of configs/360.py (contraction, disparity spacing, icosahedron basis,
opaque background), with smaller MLPs, fewer samples and fewer steps.
"""

import importlib

import ml_collections

from configs import demo


def get_config() -> ml_collections.ConfigDict:
    c = importlib.import_module("configs.360").get_config()
    small = demo.get_config()
    c.dataset = "demo360"  # with data_dir empty, the package renders its own unbounded scene and caches it
    c.exp_dir = "exp/demo360"
    c.factor = 2  # images_2/: 96x64

    c.num_prop_samples = (48, 32)
    c.num_nerf_samples = 32
    c.max_deg_point = 8
    for field in ("prop_depth", "prop_width", "nerf_depth", "nerf_width", "skip_layer", "bottleneck_width",
                  "view_width", "batch_size", "grad_accum", "max_steps", "lr_init", "lr_final", "lr_delay_steps", "pose_warmup_steps",
                  "checkpoint_every", "log_every", "val_every", "render_chunk"):
        c[field] = small[field]
    c.max_steps = 1000
    c.checkpoint_every = 500
    # export.py --config.export=splats at CPU sizes: 15 k splats fitted in 6000 steps (README, "Splats").
    c.export_splats = 15_000
    c.splat_steps = 6000
    c.splat_sh_every = 600
    return c
