import sys
import pathlib

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from helpers import run_config  # noqa: E402
from mipnerf.datasets.builtin import demo  # noqa: E402


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory):
    """The demo scene at 16x16 pixels with few views: a real scene that trains in seconds."""
    out = tmp_path_factory.mktemp("tiny_scene")
    demo.render_demo_scene(out, size=16, n_train=12, n_val=2, n_test=3, spp=2)
    return out


@pytest.fixture(scope="session")
def trained_run(tiny_scene, tmp_path_factory):
    """The exp_dir of a tiny model trained on the tiny scene (`helpers.run_config`), with checkpoints every 50 steps."""
    from mipnerf.commands import train

    exp_dir = tmp_path_factory.mktemp("trained")
    train.train(run_config(tiny_scene, exp_dir), log=lambda s: None)
    return exp_dir


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test item (`item.rep_call`), so fixtures can act on a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
