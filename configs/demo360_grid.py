"""The built-in unbounded scene with Zip-NeRF's method at CPU sizes: configs/demo360.py's scene and
sample counts, configs/demo_grid.py's grid and MLP sizes, and the pieces of configs/360_grid.py
(blurred interlevel loss, power-ladder spacing and distortion, per-round proposal grids,
preconditioned tables with scale features, exponential density, the view MLP's skip, a random
background).

    python train.py --config=configs/demo360_grid.py

What each piece buys here: README, "Zip-NeRF's pieces" (benchmarks/zip_ablation.py). One point
per frustum (the mean) rather than 6, for a 2-core CPU.
"""

import ml_collections

from configs import demo360, demo_grid

GRID_FIELDS = ("field", "grid_levels", "grid_table_log2", "grid_features", "grid_multisamples", "grid_min_res",
               "grid_max_res", "prop_grid_levels", "prop_grid_table_log2", "prop_grid_max_res",
               "prop_grid_multisamples", "grid_width", "grid_depth", "bottleneck_width", "view_depth", "view_width",
               "lr_init", "lr_final", "lr_delay_steps", "adam_beta2", "adam_eps", "grad_max_norm")
# configs/360_grid.py's pieces, each with the settings it brings (benchmarks/zip_ablation.py turns
# each off in turn by restoring demo360.py's / demo_grid.py's values of its fields).
ZIP_PIECES = {
    "interlevel": dict(interlevel_loss="blurred", interlevel_blurs=(0.03, 0.003), interlevel_loss_mult=0.01,
                       dilation_multiplier=0.0, dilation_bias=0.0),
    "spacing": dict(ray_spacing="power_ladder", near=0.0),
    "distortion": dict(distortion_distance="power_ladder"),
    "field": dict(prop_grid_round_max_res=(64, 128), prop_grid_features=1, grid_features=4, grid_table_scale=10.0,
                  grid_append_scale=True, grid_decay_mult=0.05, density_activation="exp", view_depth=3,
                  view_skip_layer=2),
    "background": dict(background="random", opaque_background=False),
}


def get_config() -> ml_collections.ConfigDict:
    c = demo360.get_config()
    grid = demo_grid.get_config()
    for field in GRID_FIELDS:
        c[field] = grid[field]
    for settings in ZIP_PIECES.values():
        c.update(settings)
    c.exp_dir = "exp/demo360_grid"
    c.pose_refine = True  # as configs/capture_grid.py, with a smaller appearance vector
    c.appearance_dim = 8
    c.appearance_affine = True
    return c
