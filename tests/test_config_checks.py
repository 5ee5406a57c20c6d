"""Config checks: a setting that another field's choice leaves unused is refused, naming both fields."""

import importlib

import pytest

import jax.numpy as jnp
from helpers import ROOT, tiny_config
from mipnerf.commands.config_checks import UNUSED, check_config
from mipnerf.errors import ConfigError
from mipnerf.model import mipnerf360

# (field, a value, the field choosing, a choice that leaves it unused, one that uses it)
SETTINGS = [
    ("factor", 2, "dataset", "multiscale", "blender"),
    ("llffhold", 4, "dataset", "blender", "colmap"),
    ("multiscale_loss", False, "dataset", "blender", "multiscale"),
    ("grid_bound", 2.0, "contraction", True, False),  # with field="grid" (`EXTRA`)
    ("charbonnier_padding", 0.01, "data_loss", "mse", "charbonnier"),
    ("render_path_file", "path.json", "render_path", "spiral", "file"),
    ("export_resolution", 64, "export", "pointcloud", "mesh"),
    ("export_level", 5.0, "export", "pointcloud", "mesh"),
    ("export_obj", True, "export", "pointcloud", "mesh"),
    ("export_points", 1000, "export", "mesh", "pointcloud"),
    ("export_views", 3, "export", "mesh", "pointcloud"),
    ("export_splats", 1000, "export", "mesh", "splats"),
    ("splat_steps", 100, "export", "pointcloud", "splats"),
    ("splat_sh_degree", 1, "export", "pointcloud", "splats"),
    ("splat_sh_every", 10, "export", "pointcloud", "splats"),
    ("splat_extra_views", 0.5, "export", "pointcloud", "splats"),
    ("pose_lr_init", 1e-3, "pose_refine", False, True),
    ("pose_lr_final", 1e-5, "pose_refine", False, True),
    ("pose_warmup_steps", 10, "pose_refine", False, True),
    ("pose_decay", 0.1, "pose_refine", False, True),
    ("eval_pose_steps", 10, "pose_refine", False, True),
    ("eval_pose_batch", 64, "pose_refine", False, True),
] + [(setting, 2, "field", "grid", "mlp") for setting in ("prop_depth", "prop_width", "nerf_depth", "nerf_width",
                                                          "skip_layer", "min_deg_point")] + [
    ("max_deg_point", 12, "field", "grid", "mlp"),
    ("basis", "octahedron", "field", "grid", "mlp"),
    ("disable_integration", True, "field", "grid", "mlp"),
] + [(setting, 12, "field", "mlp", "grid") for setting in ("grid_levels", "grid_table_log2", "grid_min_res",
                                                           "prop_grid_levels", "prop_grid_table_log2")] + [
    ("grid_features", 4, "field", "mlp", "grid"),
    ("grid_max_res", 64, "field", "mlp", "grid"),
    ("prop_grid_max_res", 64, "field", "mlp", "grid"),
    ("grid_multisamples", 1, "field", "mlp", "grid"),
    ("prop_grid_multisamples", 1, "field", "mlp", "grid"),
    ("grid_width", 32, "field", "mlp", "grid"),
    ("grid_depth", 2, "field", "mlp", "grid"),
    ("grid_decay_mult", 0.5, "field", "mlp", "grid"),
    ("grid_bound", 2.0, "field", "mlp", "grid"),
    ("grid_table_scale", 10.0, "field", "mlp", "grid"),
    ("grid_multisample_rotation", True, "field", "mlp", "grid"),
    ("grid_multisample_scale", 0.7, "field", "mlp", "grid"),
    ("grid_append_scale", True, "field", "mlp", "grid"),
    ("prop_grid_features", 1, "field", "mlp", "grid"),
    ("prop_grid_round_max_res", (64,), "field", "mlp", "grid"),
    ("prop_grid_levels", 3, "prop_grid_round_max_res", (64,), ()),
    ("prop_grid_max_res", 32, "prop_grid_round_max_res", (64,), ()),
    ("ray_spacing_power", -1.0, "ray_spacing", "linear", "power_ladder"),
    ("ray_spacing_premult", 4.0, "ray_spacing", "disparity", "power_ladder"),
    ("interlevel_blurs", (0.05,), "interlevel_loss", "outer", "blurred"),
    ("distortion_power", -1.0, "distortion_distance", "s", "power_ladder"),
    ("distortion_premult", 100.0, "distortion_distance", "s", "power_ladder"),
]
EXTRA = {("grid_bound", "contraction"): {"field": "grid"},  # other fields a pair needs
         ("prop_grid_levels", "prop_grid_round_max_res"): {"field": "grid"},
         ("prop_grid_max_res", "prop_grid_round_max_res"): {"field": "grid"}}


def test_factor_with_a_multiscale_scene_on_the_command_line_is_refused(tmp_path):
    with pytest.raises(ConfigError) as refused:
        check_config(tiny_config(tmp_path, tmp_path, dataset="multiscale", factor=2), explicit={"factor"})
    assert str(refused.value) == ("config.factor=2: unused with dataset='multiscale' (a multiscale scene's "
                                  "metadata.json gives every image's scale); drop --config.factor or choose another "
                                  "dataset")


@pytest.mark.parametrize("field,value,choice,unused,used", SETTINGS, ids=[f"{s[0]}-{s[2]}" for s in SETTINGS])
def test_an_unused_setting_is_refused_in_one_line_and_a_used_one_passes(tmp_path, field, value, choice, unused, used):
    extra = EXTRA.get((field, choice), {})
    with pytest.raises(ConfigError) as refused:
        check_config(tiny_config(tmp_path, tmp_path, **{field: value, choice: unused}, **extra), explicit={field, choice})
    message = str(refused.value)
    assert message.startswith(f"config.{field}={value!r}: unused with {choice}={unused!r} (")
    assert "\n" not in message
    check_config(tiny_config(tmp_path, tmp_path, **{field: value, choice: used}, **extra), explicit={field, choice})
    check_config(tiny_config(tmp_path, tmp_path, **{field: value, choice: unused}, **extra), explicit={choice})


def test_every_unused_setting_is_tried():
    assert sorted(s[0] for s in SETTINGS) == sorted(u[0] for u in UNUSED)


def test_every_setting_of_a_field_kind_is_read_by_its_builder_alone(tmp_path):
    """`mipnerf360.FIELDS` lists the settings each kind alone reads: a kind that read another's, or
    missed one of its own, would make the refusal wrong."""
    for kind, field_kind in mipnerf360.FIELDS.items():
        read = set()
        plain = tiny_config(tmp_path, tmp_path, field=kind).to_dict()

        class Recorder(dict):
            def __getattr__(self, name):
                read.add(name)
                return plain[name]

        field_kind.build(Recorder(plain), jnp.float32)
        others = {s for k, f in mipnerf360.FIELDS.items() if k != kind for s in f.settings}
        assert set(field_kind.settings) <= read, kind
        assert not (read & others), kind


def test_a_config_file_may_set_what_a_command_line_choice_leaves_unused(tmp_path):
    config = importlib.import_module("configs.360_grid").get_config()
    config.data_dir, config.field = "scene", "mlp"
    check_config(config, explicit={"field", "data_dir"})
    with pytest.raises(ConfigError, match="config.grid_levels=10: unused with field='mlp'"):
        check_config(config, explicit={"field", "data_dir", "grid_levels"})


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "configs").glob("*.py") if p.stem != "__init__"))
def test_every_config_file_passes(name):
    config = importlib.import_module(f"configs.{name}").get_config()
    config.data_dir = config.data_dir or "scene"
    check_config(config)


@pytest.mark.parametrize("overrides, field", [
    (dict(interlevel_loss="blurred", interlevel_blurs=(0.03, 0.003)), "interlevel_blurs"),  # 1 proposal round
    (dict(interlevel_loss="blurred", interlevel_blurs=(0.0,)), "interlevel_blurs"),
    (dict(interlevel_loss="spline"), "interlevel_loss"),
    (dict(ray_spacing="power_ladder", ray_spacing_power=0.5), "ray_spacing_power"),
    (dict(distortion_distance="t"), "distortion_distance"),
    (dict(field="grid", prop_grid_round_max_res=(64, 128)), "prop_grid_round_max_res"),  # 1 proposal round
    (dict(field="grid", prop_grid_round_max_res=(8,)), "prop_grid_round_max_res"),  # below grid_min_res
    (dict(density_activation="relu"), "density_activation"),
    (dict(background="random", white_background=True), "background"),
    (dict(background="random", white_background=False, opaque_background=True), "background"),
    (dict(export="splats", splat_sh_degree=4), "splat_sh_degree"),
    (dict(export="splats", export_splats=0), "export_splats"),
    (dict(export="splats", splat_extra_views=-1.0), "splat_extra_views"),
    (dict(export="gaussians"), "export"),
])
def test_impossible_zip_nerf_settings_are_refused_by_name(tmp_path, overrides, field):
    with pytest.raises(ConfigError, match=rf"^config\.{field}="):
        check_config(tiny_config(tmp_path, tmp_path, **overrides))
