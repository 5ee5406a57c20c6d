"""A run's settings travel with it: `exp_dir/config.json`, written by train.py, is what eval.py,
render.py and a resumed train.py take the model from.

Model fields shape the parameters or the sampling; a checkpoint only makes sense with the values
it was trained with. Scene fields say where the images are; eval and render take the run's
unless the command line names others (a dataset that moved, another `factor`).
"""

import json
import pathlib
from typing import Iterable, Optional

import ml_collections

from mipnerf.errors import ConfigError

CONFIG_FILE = "config.json"

MODEL_FIELDS = (
    "near", "far", "white_background", "forward_facing",
    "ray_spacing", "ray_spacing_power", "ray_spacing_premult", "contraction", "basis", "opaque_background", "disable_integration",
    "num_prop_samples", "num_nerf_samples", "anneal_slope", "resample_padding", "dilation_multiplier",
    "dilation_bias", "min_deg_point", "max_deg_point", "deg_view",
    "prop_depth", "prop_width", "nerf_depth", "nerf_width", "skip_layer", "bottleneck_width", "view_depth",
    "view_width", "density_bias", "rgb_padding",
    "field", "grid_levels", "grid_table_log2", "grid_features", "grid_min_res", "grid_max_res", "prop_grid_levels",
    "prop_grid_table_log2", "prop_grid_max_res", "grid_width", "grid_multisamples", "prop_grid_multisamples", "grid_depth", "grid_bound",
    "grid_table_scale", "grid_append_scale", "prop_grid_features", "prop_grid_round_max_res",
    "view_skip_layer", "density_activation", "background", "grid_multisample_rotation", "grid_multisample_scale",
    "pose_refine",  # the train state holds the pose corrections or not
    "appearance_dim", "appearance_affine",  # the parameters hold per-image appearance or not
)
SCENE_FIELDS = ("dataset", "data_dir", "factor", "llffhold")
# Model fields added after runs began to record their config: what a run whose config.json lacks
# one was trained with (the behaviour before the field existed).
BEFORE_THE_FIELD = dict(ray_spacing_power=-1.5, ray_spacing_premult=2.0, grid_table_scale=1.0, grid_append_scale=False,
                        prop_grid_features=0, prop_grid_round_max_res=(), view_skip_layer=0,
                        density_activation="softplus", background="fixed", grid_multisample_rotation=False,
                        grid_multisample_scale=1.0)


def _recorded(saved: dict) -> dict:
    """A run's config.json fields, with `BEFORE_THE_FIELD`'s values for model fields it predates."""
    return {**BEFORE_THE_FIELD, **saved}


def save(config, exp_dir: pathlib.Path) -> None:
    """Writes `config` to `exp_dir/config.json`."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(json.loads(config.to_json_best_effort()), indent=2, sort_keys=True)
    (exp_dir / CONFIG_FILE).write_text(text)


def load(exp_dir) -> Optional[dict]:
    """The fields of `exp_dir/config.json`, or None when the run has none."""
    path = pathlib.Path(exp_dir) / CONFIG_FILE
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path} cannot be read ({e}); expected the JSON config that train.py wrote") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{path}: expected a JSON object of config fields")
    return saved


def _same(value):
    """A field's value in a form that compares equal across JSON (lists) and configs (tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(_same(v) for v in value)
    return value


def _mismatch(field: str, given, saved, exp_dir, advice: str) -> ConfigError:
    return ConfigError(f"config.{field}={_same(given)!r} differs from the run in {exp_dir}, trained with "
                       f"{field}={_same(saved)!r} ({pathlib.Path(exp_dir) / CONFIG_FILE}); {advice}")


def for_restore(config: ml_collections.ConfigDict, explicit: Optional[Iterable[str]] = None) -> ml_collections.ConfigDict:
    """`config` with the model and scene fields of the run in `config.exp_dir`.

    Args:
      explicit: the fields given on the command line (None: every field). An explicit model
        field that differs from the run's raises `ConfigError` naming both values; an explicit
        scene field wins over the run's.
    """
    saved = load(config.exp_dir)
    if saved is None:
        return config
    saved = _recorded(saved)
    explicit = None if explicit is None else set(explicit)
    merged = config.copy_and_resolve_references()
    for field in MODEL_FIELDS + SCENE_FIELDS:
        if field not in saved or field not in config:
            continue
        named = explicit is None or field in explicit
        if named and field in MODEL_FIELDS and _same(config[field]) != _same(saved[field]):
            raise _mismatch(field, config[field], saved[field], config.exp_dir,
                            "drop the flag to use the run's value")
        if not named:
            merged[field] = _same(saved[field])
    return merged


def check_resume(config: ml_collections.ConfigDict) -> None:
    """Raises `ConfigError` when a model field of `config` differs from the run it would resume."""
    saved = load(config.exp_dir)
    saved = {} if saved is None else _recorded(saved)
    for field in MODEL_FIELDS:
        if field in saved and _same(config[field]) != _same(saved[field]):
            raise _mismatch(field, config[field], saved[field], config.exp_dir,
                            "resume with the run's value, or train into another --config.exp_dir")
