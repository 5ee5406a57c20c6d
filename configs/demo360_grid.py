"""The built-in unbounded scene with hash-grid fields: configs/demo360.py's scene, contraction and
sampling, with the fields of configs/demo_grid.py.

    python train.py --config=configs/demo360_grid.py
"""

import ml_collections

from configs import demo360, demo_grid

GRID_FIELDS = ("field", "grid_levels", "grid_table_log2", "grid_features", "grid_multisamples", "grid_min_res",
               "grid_max_res", "prop_grid_levels", "prop_grid_table_log2", "prop_grid_max_res",
               "prop_grid_multisamples", "grid_width", "grid_depth", "bottleneck_width", "view_depth", "view_width",
               "lr_init", "lr_final", "lr_delay_steps", "adam_beta2", "adam_eps", "grad_max_norm")


def get_config() -> ml_collections.ConfigDict:
    c = demo360.get_config()
    grid = demo_grid.get_config()
    for field in GRID_FIELDS:
        c[field] = grid[field]
    c.exp_dir = "exp/demo360_grid"
    c.pose_refine = True  # as configs/360_grid.py, with a smaller appearance vector
    c.appearance_dim = 8
    c.appearance_affine = True
    return c
