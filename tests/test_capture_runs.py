"""Train, eval and render on captures, end to end: a 360 capture and a forward-facing one."""

import json

import imageio.v3 as iio
import numpy as np
import pytest

import captures
from helpers import tiny_config
from mipnerf.commands import evaluate, render, train

UNBOUNDED = dict(near=0.2, far=1e6, ray_spacing="disparity", contraction=True, basis="octahedron",
                 num_prop_samples=(12, 12), render_path="ellipse")
FORWARD = dict(forward_facing=True, near=0.0, far=1.0, render_path="spiral")


@pytest.mark.parametrize("kind", ["360", "forward"])
def test_train_eval_render_a_capture(kind, tmp_path):
    captures.write_capture(tmp_path / "capture", count=10, forward=kind == "forward", poses_bounds=kind == "forward")
    settings = UNBOUNDED if kind == "360" else FORWARD
    config = tiny_config(tmp_path / "capture", tmp_path / "exp", dataset="colmap", factor=2, opaque_background=True,
                         white_background=False, max_steps=20, checkpoint_every=10, val_every=10, render_frames=6,
                         **settings)
    train.train(config, log=lambda s: None)
    transform = json.loads((tmp_path / "exp" / "transform.json").read_text())
    assert np.asarray(transform["world_to_model"]).shape == (4, 4)
    result = evaluate.evaluate(config, log=lambda s: None)
    # Every 8th image of 10 is a test view: img_000 and img_008, at 24x16.
    assert [im["ground_truth"].rsplit("/", 1)[-1] for im in result["images"]] == ["img_000.png", "img_008.png"]
    assert iio.imread(tmp_path / "exp" / "eval" / "depth_001.png").shape == (16, 24, 3)
    assert np.isfinite(result["psnr"])
    paths = render.render_video(config, log=lambda s: None)
    assert [p.name for p in paths] == [f"{config.render_path}_{k}.{e}" for k in ("color", "depth") for e in ("mp4", "gif")]
    frames = iio.imread(paths[1])
    assert frames.shape[0] == 6 and frames.shape[1:3] == (16, 24)
