"""Captures (mip-NeRF 360 layout) with hash-grid fields in the manner of Zip-NeRF: contracted
multisampled frustums, levels down-weighted by their scale, two proposal grids.

    python train.py --config=configs/360_grid.py --config.data_dir=PATH/360_v2/garden

The scene model (contraction, disparity spacing, opaque background, losses) is configs/360.py's;
the grid sizes are GPU-sized (tables of 2^21 entries for the NeRF round). Pose refinement and
per-image appearance are on (configs/360.py keeps the published mip-NeRF 360 model without them).
"""

import importlib

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = importlib.import_module("configs.360").get_config()
    c.exp_dir = "exp/360_grid"
    c.field = "grid"
    c.grid_levels = 16
    c.grid_table_log2 = 21
    c.grid_features = 2
    c.grid_min_res = 16
    c.grid_max_res = 8192
    c.grid_multisamples = 6
    c.prop_grid_levels = 8
    c.prop_grid_table_log2 = 19
    c.prop_grid_max_res = 512
    c.prop_grid_multisamples = 6
    c.grid_width = 64
    c.grid_depth = 1
    c.bottleneck_width = 15
    c.view_depth = 2
    c.view_width = 64
    c.num_prop_samples = (64, 64)
    c.num_nerf_samples = 32
    c.batch_size = 65536
    c.max_steps = 25_000
    c.lr_init = 1e-2
    c.lr_final = 1e-3
    c.lr_delay_steps = 2500
    c.adam_beta2 = 0.99
    c.adam_eps = 1e-15
    c.grad_max_norm = 0.0
    c.grid_decay_mult = 0.1
    # Real captures as they come, as nerfacto and Zip-NeRF's code train them: each training
    # camera's pose refined, and a per-image appearance vector and affine colour transform.
    c.pose_refine = True
    c.appearance_dim = 32
    c.appearance_affine = True
    return c
