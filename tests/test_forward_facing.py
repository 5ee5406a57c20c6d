"""The forward-facing model on a forward-facing capture of the built-in unbounded scene: NDC is what
lets it see the far pillars and the sky behind the central shapes."""

import pytest

from helpers import mean_test_psnr, tiny_config
from mipnerf.commands import train
from mipnerf.datasets.builtin import demo360
from mipnerf.model import mipnerf360
from mipnerf.training import distributed, update

SCENE = dict(width=48, height=32, n_images=24, spp=2, forward=True)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    out = tmp_path_factory.mktemp("forward")
    demo360.render_demo360_scene(out, **SCENE)
    return out


def forward_config(scene_dir, exp_dir, **overrides):
    """configs/llff.py's model (NDC, linear spacing in NDC depth, cylinders), tiny."""
    settings = dict(dataset="colmap", factor=1, forward_facing=True, near=0.0, far=1.0, opaque_background=True,
                    white_background=False, num_prop_samples=(32,), num_nerf_samples=24, max_deg_point=8,
                    data_loss="charbonnier", distortion_loss_mult=0.01, max_steps=300, lr_init=5e-3)
    return tiny_config(scene_dir, exp_dir, **{**settings, **overrides})


def test_ndc_learns_the_forward_facing_scene_and_beats_world_space_sampling(scene, tmp_path):
    config = forward_config(scene, tmp_path / "ndc")
    start = mean_test_psnr(config, update.create_train_state(config, mipnerf360.build_model(config),
                                                               distributed.make_mesh())[0].params)
    ndc = mean_test_psnr(config, train.train(config, log=lambda s: None).params)
    # The same model without NDC: the cameras in the 360 frame (centres within [-1, 1]^3, the
    # central shapes about 6 away) and linear samples out to 20, past the central shapes and the
    # nearest pillars but short of the others, the far ground and the sky.
    world_config = forward_config(scene, tmp_path / "world", forward_facing=False, near=0.5, far=20.0)
    world = mean_test_psnr(world_config, train.train(world_config, log=lambda s: None).params)
    print(f"test PSNR: untrained {start:.2f}, NDC {ndc:.2f}, world space {world:.2f}")
    assert ndc > start + 6, (start, ndc)
    assert ndc > world + 2, (ndc, world)
