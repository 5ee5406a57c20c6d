"""The built-in demo scene with hash-grid fields: the same quality as configs/demo.py in a fraction
of its time on a CPU.

    python train.py --config=configs/demo_grid.py
"""

import ml_collections

from configs import demo


def get_config() -> ml_collections.ConfigDict:
    c = demo.get_config()
    c.exp_dir = "exp/demo_grid"
    c.field = "grid"
    c.grid_bound = 1.3  # the demo scene lies within radius 1.25 of the origin
    c.grid_levels = 12
    c.grid_table_log2 = 16
    c.grid_min_res = 16
    c.grid_max_res = 512
    c.prop_grid_levels = 5
    c.prop_grid_table_log2 = 14
    c.prop_grid_max_res = 128
    c.grid_width = 64
    c.grid_depth = 1
    c.bottleneck_width = 15
    c.view_depth = 2
    c.view_width = 64

    c.num_prop_samples = (64,)
    c.num_nerf_samples = 32
    c.max_steps = 1000
    c.lr_init = 1e-2
    c.lr_final = 1e-3
    c.lr_delay_steps = 50
    c.adam_beta2 = 0.99
    c.adam_eps = 1e-15
    c.grad_max_norm = 0.0  # the grids' many sparse gradients do not suit the MLPs' clipping
    return c
