"""The unbounded model on the built-in unbounded scene: it learns, and contraction is what makes it work."""

import pytest

from helpers import mean_test_psnr, tiny_config
from mipnerf.commands import train
from mipnerf.datasets.builtin import demo360
from mipnerf.model import mipnerf360
from mipnerf.training import distributed, update

SCENE = dict(width=48, height=32, n_images=24, spp=2)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo360")
    demo360.render_demo360_scene(out, **SCENE)
    return out


def unbounded_config(scene_dir, exp_dir, **overrides):
    """configs/360.py's model (contraction, disparity spacing, icosahedron basis), tiny."""
    settings = dict(dataset="colmap", factor=1, near=0.2, far=1e6, ray_spacing="disparity", contraction=True,
                    basis="icosahedron", opaque_background=True, white_background=False, num_prop_samples=(24, 24),
                    max_deg_point=8, data_loss="charbonnier", distortion_loss_mult=0.01, max_steps=400, lr_init=5e-3)
    return tiny_config(scene_dir, exp_dir, **{**settings, **overrides})


def test_contraction_learns_the_unbounded_scene_and_beats_a_bounded_model(scene, tmp_path):
    config = unbounded_config(scene, tmp_path / "unbounded")
    start = mean_test_psnr(config, update.create_train_state(config, mipnerf360.build_model(config), distributed.make_mesh())[0].params)
    unbounded = mean_test_psnr(config, train.train(config, log=lambda s: None).params)
    # The same model without contraction: linear spacing out to twice the radius of the camera ring
    # (the cameras lie within [-1, 1]^3), which holds the central objects and the ground around them
    # but not the far pillars, the distant ground or the sky.
    bounded_config = unbounded_config(scene, tmp_path / "bounded", contraction=False, ray_spacing="linear", near=0.05,
                                      far=2.0)
    bounded = mean_test_psnr(bounded_config, train.train(bounded_config, log=lambda s: None).params)
    print(f"test PSNR: untrained {start:.2f}, unbounded {unbounded:.2f}, bounded {bounded:.2f}")
    assert unbounded > start + 6, (start, unbounded)
    assert unbounded > bounded + 2, (unbounded, bounded)
