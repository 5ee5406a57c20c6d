import sys
import pathlib

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from mipnerf.datasets import demo  # noqa: E402


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory):
    """The demo scene at 16x16 pixels with few views: a real scene that trains in seconds."""
    out = tmp_path_factory.mktemp("tiny_scene")
    demo.render_demo_scene(out, size=16, n_train=12, n_val=2, n_test=3, spp=2)
    return out
