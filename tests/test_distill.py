"""export.py --config.export=splats end to end on a trained tiny run: the fitted splats beat the ones
they started from on the test views, the file reads back within the budget, eval.py scores and
times them, and an interrupted export resumes from its checkpoint."""

import os
import shutil
import signal

import numpy as np
import pytest

from helpers import run_config
from mipnerf import datasets, metrics
from mipnerf.errors import ConfigError, Interrupted
from mipnerf.commands import evaluate, export
from mipnerf.export import distill
from mipnerf.model import mipnerf360
from mipnerf.render import gaussians, rasterize, rendering, splat_file

jax_take = lambda cams, n: type(cams)(*(x[n] if not isinstance(x, tuple) else type(x)(*(y[n] for y in x))
                                         for x in cams))
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
    # On a CPU the compiled kernel draws them: its images score as the JAX rasteriser's do.
    assert splats["rasteriser"] == "cpu kernel" and splats["jax_seconds_per_view"] > 0
    train, test = datasets.load_split(config, "train"), datasets.load_split(config, "test")
    assert splats["psnr"] == pytest.approx(splat_psnr(splat_file.read_run_splats(config.exp_dir, train), config, test),
                                           abs=0.01)


def test_eval_splats_without_splats_stops_before_rendering(tiny_scene, trained_run, tmp_path):
    exp_dir = tmp_path / "run"
    shutil.copytree(trained_run, exp_dir, ignore=shutil.ignore_patterns("eval", "export"))
    config = run_config(tiny_scene, exp_dir, eval_splats=True, eval_lpips=False)
    with pytest.raises(ConfigError, match=r"export/splats.ply: no such file; make the run's splats with export.py"):
        evaluate.evaluate(config, log=lambda s: None, explicit=("eval_splats", "eval_lpips"))
    assert not (exp_dir / "eval" / "color_000.png").exists()  # no view rendered first


def test_an_interrupted_fit_resumes_from_its_checkpoint_to_the_same_splats(tiny_scene, tmp_path, monkeypatch):
    import ml_collections

    from mipnerf.cameras import camera

    train = datasets.load_split(run_config(tiny_scene, tmp_path), "train")
    cams = camera.Cameras.of(train.camtoworlds, train.intrinsics, train.width, train.height, 0.0, 1.0)
    views = [distill.View(jax_take(cams, n), train.images[n]) for n in range(len(train.images))]
    rng = np.random.default_rng(0)
    n = 300
    start = gaussians.Splats(rng.uniform(-1, 1, (n, 3)), np.full((n, 3), -3.0), np.tile([1.0, 0, 0, 0], (n, 1)),
                             np.zeros(n), rng.normal(size=(n, 4, 3)) * 0.1)
    start = gaussians.Splats(*(np.asarray(x, np.float32) for x in start))
    active = np.arange(n) < 200
    config = ml_collections.ConfigDict(dict(splat_steps=40, checkpoint_every=20, seed=0, splat_sh_every=10))
    whole = distill.fit(views, start, active, config, 1.0, np.ones(3), tmp_path / "a", log=lambda s: None)
    shutil.rmtree(tmp_path / "a" / "40")  # as if stopped after step 20's checkpoint
    lines = []
    resumed = distill.fit(views, start, active, config, 1.0, np.ones(3), tmp_path / "a", log=lines.append)
    assert any("resumed from step 20" in line for line in lines)
    np.testing.assert_array_equal(whole[1], resumed[1])
    for a, b in zip(whole[0], resumed[0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    # Ctrl-C during step 26: the step ends, its checkpoint is saved, and the export says so.
    make_step = distill.make_step

    def make_interrupted_step(*args):
        step_fn = make_step(*args)
        calls = []

        def step(*a):
            calls.append(None)
            if len(calls) == 26:
                os.kill(os.getpid(), signal.SIGINT)
            return step_fn(*a)
        return step

    monkeypatch.setattr(distill, "make_step", make_interrupted_step)
    with pytest.raises(Interrupted, match="SIGINT: saved the splats' checkpoint at step 26 of 40") as stopped:
        distill.fit(views, start, active, config, 1.0, np.ones(3), tmp_path / "b", log=lambda s: None)
    assert stopped.value.exit_code == 130 and (tmp_path / "b" / "26").is_dir()
    monkeypatch.setattr(distill, "make_step", make_step)
    resumed = distill.fit(views, start, active, config, 1.0, np.ones(3), tmp_path / "b", log=lambda s: None)
    np.testing.assert_array_equal(whole[1], resumed[1])
    for a, b in zip(whole[0], resumed[0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
