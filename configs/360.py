"""mip-NeRF 360 on unbounded real captures: the published "360" settings.

    python train.py --config=configs/360.py --config.data_dir=PATH/360_v2/garden

Images from images_4/ (use --config.factor=2 for the indoor scenes, as the benchmarks do).
"""

import ml_collections

from configs import defaults


def get_config() -> ml_collections.ConfigDict:
    c = defaults.get_config()
    c.dataset = "colmap"
    c.exp_dir = "exp/360"
    c.factor = 4
    c.llffhold = 8

    # Unbounded: disparity spacing out to 1e6 in the normalised frame, contracted Gaussians
    # projected on the 21 icosahedron directions, and no background.
    c.near = 0.2
    c.far = 1e6
    c.ray_spacing = "disparity"
    c.contraction = True
    c.basis = "icosahedron"
    c.max_deg_point = 12  # 21 directions x 12 degrees x (sin, cos) = 504 features
    c.opaque_background = True
    c.white_background = False

    c.num_prop_samples = (64, 64)
    c.num_nerf_samples = 32
    c.prop_depth, c.prop_width = 4, 256
    c.nerf_depth, c.nerf_width = 8, 1024
    c.bottleneck_width = 256

    # The step at batch 16384 in 4 micro-batches of 4096 rays: 13.6 GB of temporaries in bf16
    # (15.9 GB in float32) against 50.6 GB (61.8 GB) in one, measured on a CPU by
    # benchmarks/memory.py --step. A micro-batch still fills a GPU's matmuls (131k to 262k rows),
    # so the cost is a loop of 4 and a sum of the gradients. Rematerialisation would cost an
    # extra pass of elementwise work for 0.9 GB more, so it stays off.
    c.grad_accum = 4
    c.remat = False

    c.data_loss = "charbonnier"
    c.distortion_loss_mult = 0.01
    c.adam_eps = 1e-6
    c.render_path = "ellipse"
    return c
