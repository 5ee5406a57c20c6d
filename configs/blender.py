"""mip-NeRF 360 on Blender (nerf_synthetic) scenes: the published "blender_256" settings, which are
configs/defaults.py's.

    python train.py --config=configs/blender.py --config.data_dir=PATH/nerf_synthetic/lego
"""

import ml_collections

from configs import defaults


def get_config() -> ml_collections.ConfigDict:
    c = defaults.get_config()
    c.dataset = "blender"
    c.exp_dir = "exp/blender"
    return c
