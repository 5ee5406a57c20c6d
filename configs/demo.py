"""The built-in demo scene, sized to train on a 2-core CPU in minutes.

    python train.py --config=configs/demo.py
"""

import ml_collections

from configs import defaults


def get_config() -> ml_collections.ConfigDict:
    c = defaults.get_config()
    c.dataset = "demo"  # with data_dir empty, the package renders its own scene and caches it
    c.exp_dir = "exp/demo"

    c.num_prop_samples = (64,)
    c.num_nerf_samples = 32
    c.max_deg_point = 10
    c.prop_depth = 2
    c.prop_width = 64
    c.nerf_depth = 4
    c.nerf_width = 128
    c.skip_layer = 4
    c.bottleneck_width = 128
    c.view_width = 64

    c.batch_size = 1024
    c.grad_accum = 1  # a CPU batch's step is small: one micro-batch
    c.max_steps = 1000
    c.lr_init = 5e-3
    c.lr_final = 5e-4
    c.lr_delay_steps = 100
    c.pose_warmup_steps = 200  # a fifth of the run, as 1000 of 5000 would be (when pose_refine is on)
    c.checkpoint_every = 250
    c.log_every = 50
    c.val_every = 500
    c.render_chunk = 4096
    # export.py --config.export=splats at CPU sizes: 15 k splats fitted in 6000 steps (README, "Splats").
    c.export_splats = 15_000
    c.splat_steps = 6000
    c.splat_sh_every = 600
    return c
