"""The built-in unbounded scene, read through the COLMAP loader, sized to train on a 2-core CPU.

    python train.py --config=configs/demo360.py

With `--config.dataset=colmap --config.data_dir=PATH` the same settings train on a capture.
"""

import ml_collections

from configs import demo


def get_config() -> ml_collections.ConfigDict:
    c = demo.get_config()
    c.dataset = "demo360"  # with data_dir empty, the package renders its own unbounded scene and caches it
    c.exp_dir = "exp/demo360"
    c.factor = 2  # images_2/
    c.llffhold = 8
    # The normalised frame puts the cameras inside [-1, 1]^3; the scene reaches the horizon.
    c.near = 0.05
    c.far = 6.0
    c.white_background = False
    return c
