"""mip-NeRF's multiscale setting on the built-in demo scene, sized for a 2-core CPU: every image at
full, 1/2, 1/4 and 1/8 resolution, the data loss weighted so that every scale counts the same.

    python train.py --config=configs/multiscale.py && python eval.py --config=configs/multiscale.py

A released multiscale Blender scene with the published model, on a GPU:

    python train.py --config=configs/blender.py --config.dataset=multiscale --config.data_dir=PATH/lego
"""

import ml_collections

from configs import demo


def get_config() -> ml_collections.ConfigDict:
    c = demo.get_config()
    c.dataset = "multiscale"  # with data_dir empty, the demo scene converted to 4 scales (96 to 12 pixels)
    c.exp_dir = "exp/multiscale"
    return c
