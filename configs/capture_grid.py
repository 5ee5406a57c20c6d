"""Zip-NeRF (configs/360_grid.py) for captures as they come, as nerfacto and Zip-NeRF's own code
train them: each training camera's pose refined, and a per-image appearance vector and affine
colour transform for exposure and white balance that change from photo to photo.

    python train.py --config=configs/capture_grid.py --config.data_dir=PATH/my_capture

Use 360_grid.py to compare with published figures (the mip-NeRF 360 scenes, whose poses and
exposures are consistent), this one for your own photos.
"""

import importlib

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = importlib.import_module("configs.360_grid").get_config()
    c.exp_dir = "exp/capture_grid"
    c.pose_refine = True
    c.appearance_dim = 32
    c.appearance_affine = True
    return c
