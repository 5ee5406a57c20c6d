"""mip-NeRF 360's settings for forward-facing captures (LLFF): the published "llff_256" settings.

    python train.py --config=configs/llff.py --config.data_dir=PATH/nerf_llff_data/fern

Rays in normalised device coordinates (near plane 1, far at infinity: t in [0, 1]), cylinders
rather than cones, and an opaque background.
"""

import ml_collections

from configs import defaults


def get_config() -> ml_collections.ConfigDict:
    c = defaults.get_config()
    c.dataset = "colmap"
    c.exp_dir = "exp/llff"
    c.factor = 8  # images_8/: 504x378 for the LLFF release, as its benchmarks use
    c.llffhold = 8
    c.forward_facing = True
    c.near = 0.0
    c.far = 1.0
    c.opaque_background = True
    c.white_background = False

    c.num_prop_samples = (128,)
    c.num_nerf_samples = 32
    c.data_loss = "charbonnier"
    c.distortion_loss_mult = 0.01
    c.render_path = "spiral"
    return c
