"""Checks that a config's values are possible, so that a bad flag fails at once with its name.

`ml_collections.config_flags` already rejects unknown fields and values of the wrong type;
this module rejects values of the right type that cannot work (a negative batch, near >= far),
and settings that another field's choice would leave unused (`check_used`).
"""

from typing import Iterable

import ml_collections

from mipnerf.datasets import FORMATS
from mipnerf.errors import ConfigError
from mipnerf.model import mipnerf360
from mipnerf.model.coord import RAY_SPACINGS

PRECISIONS = ("bf16", "f32", "auto")
DATA_LOSSES = ("mse", "charbonnier")
INTERLEVEL_LOSSES = ("outer", "blurred")
DENSITY_ACTIVATIONS = ("softplus", "exp")
BACKGROUNDS = ("fixed", "random")
DISTORTION_DISTANCES = ("s", "power_ladder")
# Camera paths of render.py: mipnerf.video_render.PATHS, and "file" (config.render_path_file).
RENDER_PATHS = ("spiral", "orbit", "ellipse", "zoom", "file")
BASES = ("axes", "octahedron", "icosahedron")
EXPORTS = ("pointcloud", "mesh", "splats")  # export.py: mipnerf.exporting
# Settings that another field's choice leaves unused: (field, the choosing field, whether the
# choice leaves it unused, why). Each kind of field's own settings (`mipnerf360.FIELDS`) are added below.
UNUSED = (
    ("factor", "dataset", lambda c: FORMATS[c.dataset].multiscale,
     "a multiscale scene's metadata.json gives every image's scale"),
    ("llffhold", "dataset", lambda c: FORMATS[c.dataset].splits_by_files,
     "the scene's own files give its train, val and test splits"),
    ("multiscale_loss", "dataset", lambda c: not FORMATS[c.dataset].multiscale,
     "only a multiscale scene weighs its images' losses"),
    ("grid_bound", "contraction", lambda c: c.contraction, "the grids then span the contracted space, [-2, 2]^3"),
    ("ray_spacing_power", "ray_spacing", lambda c: c.ray_spacing != "power_ladder", "only the power ladder has a power"),
    ("ray_spacing_premult", "ray_spacing", lambda c: c.ray_spacing != "power_ladder",
     "only the power ladder has a premultiplier"),
    ("interlevel_blurs", "interlevel_loss", lambda c: c.interlevel_loss != "blurred", "only the blurred loss blurs"),
    ("distortion_power", "distortion_distance", lambda c: c.distortion_distance != "power_ladder",
     "only the power ladder has a power"),
    ("distortion_premult", "distortion_distance", lambda c: c.distortion_distance != "power_ladder",
     "only the power ladder has a premultiplier"),
    ("prop_grid_levels", "prop_grid_round_max_res", lambda c: bool(c.prop_grid_round_max_res),
     "each proposal round's grid has its own levels"),
    ("prop_grid_max_res", "prop_grid_round_max_res", lambda c: bool(c.prop_grid_round_max_res),
     "each proposal round's grid has its own finest resolution"),
    ("charbonnier_padding", "data_loss", lambda c: c.data_loss != "charbonnier", "only the Charbonnier loss is padded"),
    ("render_path_file", "render_path", lambda c: c.render_path != "file",
     "render.py reads the file only with render_path='file'"),
    ("export_resolution", "export", lambda c: c.export != "mesh", "only a mesh is made on a density grid"),
    ("export_level", "export", lambda c: c.export != "mesh", "only a mesh has a surface density"),
    ("export_obj", "export", lambda c: c.export != "mesh", "only a mesh is written as OBJ too"),
    ("export_points", "export", lambda c: c.export != "pointcloud", "only a point cloud is subsampled"),
    ("export_views", "export", lambda c: c.export != "pointcloud", "only a point cloud is rendered from training views"),
) + tuple((field, "export", lambda c: c.export != "splats", "only splats are distilled")
          for field in ("export_splats", "splat_steps", "splat_sh_degree", "splat_sh_every", "splat_extra_views")) + tuple((field, "pose_refine", lambda c: not c.pose_refine, "only refined poses have a schedule, a decay and test "
           "poses to fit") for field in ("pose_lr_init", "pose_lr_final", "pose_warmup_steps", "pose_decay",
                                         "eval_pose_steps", "eval_pose_batch")) + tuple(
    (setting, "field", lambda c, kind=kind: c.field != kind, f"only field={kind!r} reads it")
    for kind, field_kind in mipnerf360.FIELDS.items() for setting in field_kind.settings)


def _require(ok: bool, field: str, expected: str, value) -> None:
    if not ok:
        raise ConfigError(f"config.{field}={value!r}: expected {expected}")


def check_used(config: ml_collections.ConfigDict, explicit: Iterable[str] = ()) -> None:
    """Raises ConfigError, naming both fields, when a field named on the command line (`explicit`)
    is one that another field's choice leaves unused (`UNUSED`): a flag that would do nothing is
    refused rather than ignored. A config file may set such fields (configs/demo_grid.py keeps
    demo.py's MLP sizes, and a `--config.field=mlp` leaves 360_grid.py's grid sizes unused): only
    the command line is checked.
    """
    explicit = set(explicit)
    for field, choice, unused, why in UNUSED:
        if field in explicit and unused(config):
            value = config[choice]
            other = f"set --config.{choice}={not value}" if isinstance(value, bool) else f"choose another {choice}"
            raise ConfigError(f"config.{field}={config[field]!r}: unused with {choice}={value!r} ({why}); "
                              f"drop --config.{field} or {other}")


def check_config(config: ml_collections.ConfigDict, explicit: Iterable[str] = ()) -> None:
    """Raises ConfigError naming the first field whose value is impossible, or named on the command
    line (`explicit`) but unused (`check_used`)."""
    c = config
    _require(c.dataset in FORMATS, "dataset", f"one of {tuple(FORMATS)}", c.dataset)
    form = FORMATS[c.dataset]
    _require(form.built_in is not None or bool(c.data_dir), "data_dir", f"the folder of a scene ({form.folder})",
             c.data_dir)
    _require(bool(c.exp_dir), "exp_dir", "a folder for the run's outputs", c.exp_dir)
    for field in ("factor", "batch_size", "grad_accum", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every",
                  "render_chunk", "num_nerf_samples", "prop_depth", "prop_width", "nerf_depth", "nerf_width", "skip_layer",
                  "bottleneck_width", "view_width", "render_frames", "render_fps", "render_factor", "eval_pose_batch"):
        _require(int(c[field]) >= 1, field, "an integer >= 1", c[field])
    _require(c.batch_size % c.grad_accum == 0, "grad_accum", f"a divisor of batch_size ({c.batch_size})", c.grad_accum)
    for field in ("llffhold", "view_depth", "val_every", "lr_delay_steps", "pose_warmup_steps", "eval_pose_steps", "appearance_dim", "min_deg_point", "deg_view", "eval_step"):
        _require(int(c[field]) >= 0, field, "an integer >= 0", c[field])
    _require(c.max_deg_point > c.min_deg_point, "max_deg_point", f"an integer > min_deg_point ({c.min_deg_point})", c.max_deg_point)
    _require(c.near >= 0, "near", "a distance >= 0", c.near)
    _require(c.far > c.near, "far", f"a distance > near ({c.near})", c.far)
    _require(isinstance(c.num_prop_samples, (tuple, list)) and all(int(n) >= 1 for n in c.num_prop_samples),
             "num_prop_samples", "a tuple of sample counts >= 1, one per proposal round, e.g. (64, 64)", c.num_prop_samples)
    _require(c.precision in PRECISIONS, "precision", f"one of {PRECISIONS}", c.precision)
    _require(c.data_loss in DATA_LOSSES, "data_loss", f"one of {DATA_LOSSES}", c.data_loss)
    _require(c.render_path in RENDER_PATHS, "render_path", f"one of {RENDER_PATHS}", c.render_path)
    _require(c.render_path != "file" or bool(c.render_path_file), "render_path_file",
             "a camera path JSON file with render_path='file'", c.render_path_file)
    _require(c.export in EXPORTS, "export", f"one of {EXPORTS}", c.export)
    for field in ("export_points", "export_resolution", "export_splats", "splat_steps", "splat_sh_every"):
        _require(int(c[field]) >= 1, field, "an integer >= 1", c[field])
    _require(0 <= int(c.splat_sh_degree) <= 3, "splat_sh_degree", "a spherical-harmonic degree in 0..3",
             c.splat_sh_degree)
    _require(c.splat_extra_views >= 0, "splat_extra_views", "a number of cameras per training camera >= 0",
             c.splat_extra_views)
    _require(int(c.export_views) >= 0, "export_views", "an integer >= 0 (0: every training view)", c.export_views)
    _require(c.export_bound >= 0, "export_bound", "a half-width >= 0 (0: the region the cameras look at)", c.export_bound)
    _require(0 <= int(c.viewer_port) <= 65535, "viewer_port", "a TCP port in [0, 65535] (0: any free port)", c.viewer_port)
    _require(bool(c.viewer_host), "viewer_host", "an address to listen on, e.g. 127.0.0.1 or 0.0.0.0", c.viewer_host)
    _require(c.ray_spacing in RAY_SPACINGS, "ray_spacing", f"one of {RAY_SPACINGS}", c.ray_spacing)
    _require(c.ray_spacing != "disparity" or c.near > 0, "near", "a distance > 0 with ray_spacing='disparity'", c.near)
    _require(c.ray_spacing != "power_ladder" or c.ray_spacing_power < 0, "ray_spacing_power",
             "a power < 0 (the ladder must flatten out to reach far)", c.ray_spacing_power)
    _require(c.ray_spacing_premult > 0, "ray_spacing_premult", "a value > 0", c.ray_spacing_premult)
    _require(c.interlevel_loss in INTERLEVEL_LOSSES, "interlevel_loss", f"one of {INTERLEVEL_LOSSES}", c.interlevel_loss)
    _require(c.interlevel_loss != "blurred" or (isinstance(c.interlevel_blurs, (tuple, list)) and
                                                len(c.interlevel_blurs) == len(c.num_prop_samples) and
                                                all(b > 0 for b in c.interlevel_blurs)),
             "interlevel_blurs", f"one half-width > 0 per proposal round ({len(c.num_prop_samples)}, as "
             "num_prop_samples)", c.interlevel_blurs)
    _require(c.distortion_distance in DISTORTION_DISTANCES, "distortion_distance", f"one of {DISTORTION_DISTANCES}",
             c.distortion_distance)
    _require(c.distortion_premult > 0, "distortion_premult", "a value > 0", c.distortion_premult)
    _require(c.basis in BASES, "basis", f"one of {BASES}", c.basis)
    _require(c.density_activation in DENSITY_ACTIVATIONS, "density_activation", f"one of {DENSITY_ACTIVATIONS}",
             c.density_activation)
    _require(int(c.view_skip_layer) >= 0, "view_skip_layer", "an integer >= 0 (0: none)", c.view_skip_layer)
    _require(c.background in BACKGROUNDS, "background", f"one of {BACKGROUNDS}", c.background)
    _require(c.background != "random" or not c.opaque_background, "background",
             "'fixed' with opaque_background=True (nothing shows behind an opaque last interval)", c.background)
    _require(c.background != "random" or not c.white_background, "background",
             "'fixed' with white_background=True: images with alpha are composited onto white when loaded, so "
             "their targets could not take a random colour", c.background)
    _require(c.grid_table_scale > 0, "grid_table_scale", "a value > 0", c.grid_table_scale)
    _require(c.grid_multisample_scale > 0, "grid_multisample_scale", "a value > 0", c.grid_multisample_scale)
    _require(int(c.prop_grid_features) >= 0, "prop_grid_features", "an integer >= 0 (0: grid_features)",
             c.prop_grid_features)
    rounds = len(c.num_prop_samples)
    round_res = c.prop_grid_round_max_res
    _require(isinstance(round_res, (tuple, list)) and len(round_res) in (0, rounds) and
             all(int(r) >= int(c.grid_min_res) for r in round_res), "prop_grid_round_max_res",
             f"() or one resolution >= grid_min_res ({c.grid_min_res}) per proposal round ({rounds}, as "
             "num_prop_samples)", round_res)
    _require(c.field in mipnerf360.FIELDS, "field", f"one of {tuple(mipnerf360.FIELDS)}", c.field)
    for field in ("grid_levels", "grid_features", "grid_min_res", "prop_grid_levels", "grid_width"):
        _require(int(c[field]) >= 1, field, "an integer >= 1", c[field])
    _require(int(c.grid_depth) >= 0, "grid_depth", "an integer >= 0", c.grid_depth)
    for field in ("grid_table_log2", "prop_grid_table_log2"):
        _require(10 <= int(c[field]) <= 30, field, "an integer in [10, 30] (tables of 2^N entries)", c[field])
    for field in ("grid_max_res", "prop_grid_max_res"):
        _require(int(c[field]) >= int(c.grid_min_res), field, f"an integer >= grid_min_res ({c.grid_min_res})", c[field])
    for field in ("grid_multisamples", "prop_grid_multisamples"):
        _require(int(c[field]) in (1, 6), field, "1 or 6", c[field])
    _require(c.grid_bound > 0, "grid_bound", "a half-width > 0", c.grid_bound)
    _require(not c.forward_facing or form.depth_bounds, "forward_facing",
             "False unless the dataset is a COLMAP capture ('colmap'; a transforms.json holds no depth bounds "
             "for the forward-facing frame)", c.forward_facing)
    for field in ("lr_init", "lr_final", "pose_lr_init", "pose_lr_final"):
        _require(c[field] > 0, field, "a learning rate > 0", c[field])
    _require(0 < c.lr_delay_mult <= 1, "lr_delay_mult", "a factor in (0, 1]", c.lr_delay_mult)
    for field in ("adam_beta1", "adam_beta2"):
        _require(0 <= c[field] < 1, field, "a value in [0, 1)", c[field])
    for field in ("adam_eps", "grad_max_norm", "interlevel_loss_mult", "distortion_loss_mult", "charbonnier_padding",
                  "resample_padding", "dilation_multiplier", "dilation_bias", "rgb_padding", "anneal_slope",
                  "grid_decay_mult", "pose_decay"):
        _require(c[field] >= 0, field, "a value >= 0", c[field])
    check_used(c, explicit)
