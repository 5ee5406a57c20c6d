"""Config checks: a setting that another field's choice leaves unused is refused, naming both fields."""

import importlib

import pytest

from configs import blender
from helpers import ROOT, tiny_config
from mipnerf.config_checks import UNUSED, check_config
from mipnerf.errors import ConfigError

# (field, a value other than its default, the field choosing, a choice that leaves it unused, one that uses it)
SETTINGS = [
    ("factor", 2, "dataset", "multiscale", "blender"),
    ("llffhold", 4, "dataset", "blender", "colmap"),
    ("multiscale_loss", False, "dataset", "blender", "multiscale"),
    ("disable_integration", True, "field", "grid", "mlp"),
    ("grid_bound", 2.0, "contraction", True, False),
    ("charbonnier_padding", 0.01, "data_loss", "mse", "charbonnier"),
    ("render_path_file", "path.json", "render_path", "spiral", "file"),
    ("export_resolution", 64, "export", "pointcloud", "mesh"),
    ("export_level", 5.0, "export", "pointcloud", "mesh"),
    ("export_obj", True, "export", "pointcloud", "mesh"),
    ("export_points", 1000, "export", "mesh", "pointcloud"),
    ("export_views", 3, "export", "mesh", "pointcloud"),
]


def test_factor_with_a_multiscale_scene_is_refused(tmp_path):
    with pytest.raises(ConfigError) as refused:
        check_config(tiny_config(tmp_path, tmp_path, dataset="multiscale", factor=2))
    assert str(refused.value) == ("config.factor=2: expected 1 (its default) with dataset='multiscale', which "
                                  "leaves it unused: a multiscale scene's metadata.json gives every image's scale")


def test_disable_integration_with_a_grid_is_refused(tmp_path):
    with pytest.raises(ConfigError) as refused:
        check_config(tiny_config(tmp_path, tmp_path, field="grid", disable_integration=True))
    assert str(refused.value).startswith("config.disable_integration=True: expected False (its default) with "
                                         "field='grid', which leaves it unused")


@pytest.mark.parametrize("field,value,choice,unused,used", SETTINGS, ids=[s[0] for s in SETTINGS])
def test_an_unused_setting_is_refused_in_one_line_and_a_used_one_passes(tmp_path, field, value, choice, unused, used):
    with pytest.raises(ConfigError) as refused:
        check_config(tiny_config(tmp_path, tmp_path, **{field: value, choice: unused}))
    message = str(refused.value)
    assert message.startswith(f"config.{field}={value!r}: expected ") and f"with {choice}={unused!r}" in message
    assert "\n" not in message
    check_config(tiny_config(tmp_path, tmp_path, **{field: value, choice: used}))


def test_every_unused_setting_is_tried_and_defaults_to_the_reference_config():
    reference = blender.get_config()
    assert sorted(s[0] for s in SETTINGS) == sorted(u[0] for u in UNUSED)
    assert all(reference[field] == default for field, default, *_ in UNUSED)


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "configs").glob("*.py") if p.stem != "__init__"))
def test_every_config_file_passes(name):
    config = importlib.import_module(f"configs.{name}").get_config()
    config.data_dir = config.data_dir or "scene"
    check_config(config)
