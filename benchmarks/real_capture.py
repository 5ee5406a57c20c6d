"""What pose refinement and per-image appearance buy on a capture with the faults of a real one.

    python benchmarks/real_capture.py [--rows=clean,poses,exposure] [--modes=off,on] [--config.max_steps=N ...]

From the built-in unbounded scene (COLMAP layout) it writes two degraded copies, with a fixed seed:
- poses: every training camera of the COLMAP model turned by 1 degree about a random axis
  through its centre and moved by 1 % of the cameras' radius in a random direction;
- exposure: every training image (images/ and images_2/) scaled by a random exposure
  (x0.6 to x1.5, log-uniform) and random white-balance gains (x0.9 to x1.1 per channel).
The test views and their poses stay as rendered, so the test PSNR measures the model alone.

Trains `configs/demo360.py` (or --config) on the clean and degraded captures, each with the
corrections off and on ("on": pose_refine=True, appearance_dim=--appearance_dim and
appearance_affine=True, as the grid configs set them), scores the test views through eval.py's
`evaluate.evaluate`, and prints a table of test PSNR, colour-corrected PSNR and LPIPS (AlexNet and
VGG) and a last line of JSON.
"""

import json
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import flags  # noqa: E402
from PIL import Image as PILImage  # noqa: E402

from mipnerf.commands.cli import define_config, run  # noqa: E402

_CONFIG = define_config("configs/demo360.py")
_ROWS = flags.DEFINE_list("rows", ["clean", "poses", "exposure"], "the captures to train on")
_MODES = flags.DEFINE_list("modes", ["off", "on"], "the corrections' settings to train each capture with")
_APPEARANCE_DIM = flags.DEFINE_integer("appearance_dim", 8, "appearance_dim of the runs with the corrections on")
_SEED = 0
ROTATION_DEG = 1.0
SHIFT_FRACTION = 0.01  # of the mean distance of the camera centres from their mean
EXPOSURE = (0.6, 1.5)
WHITE_BALANCE = 0.1


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def train_names(scene: pathlib.Path, llffhold: int) -> set:
    """The names of the images the COLMAP loader puts in the training split (all but every llffhold-th)."""
    from mipnerf.datasets import colmap

    names = sorted(p.name for p in (scene / "images").iterdir())
    return {names[k] for k in colmap.split_indices(len(names), "train", llffhold, scene)}


def perturb_poses(scene: pathlib.Path, llffhold: int) -> dict:
    """Rewrites scene/sparse/0 with each training camera turned and moved (see the module docstring).

    Returns {"rotation_deg", "shift"} (the shift in COLMAP's units)."""
    from mipnerf.cameras import conventions
    from mipnerf.cameras.orbits import axis_angle
    from mipnerf.datasets import colmap_model

    sparse = scene / "sparse" / "0"
    model = colmap_model.read_model(sparse)
    rotations = {i: conventions.quaternion_to_matrix(im.qvec) for i, im in model.images.items()}
    centres = {i: -rotations[i].T @ im.tvec for i, im in model.images.items()}
    radius = np.mean(np.linalg.norm(np.stack(list(centres.values())) - np.mean(list(centres.values()), 0), axis=-1))
    rng = np.random.default_rng(_SEED)
    train = train_names(scene, llffhold)
    images = {}
    for i, im in sorted(model.images.items()):
        if im.name in train:
            rot = axis_angle(_unit(rng), np.radians(ROTATION_DEG)) @ rotations[i]  # turns the camera's own axes
            centre = centres[i] + SHIFT_FRACTION * radius * _unit(rng)
            im = im._replace(qvec=conventions.matrix_to_quaternion(rot), tvec=-rot @ centre)
        images[i] = im
    fmt = colmap_model.model_format(sparse)
    colmap_model.write_model(model._replace(images=images), sparse, binary=fmt == ".bin")
    return {"rotation_deg": ROTATION_DEG, "shift": SHIFT_FRACTION * radius}


def vary_exposure(scene: pathlib.Path, llffhold: int) -> None:
    """Scales each training image's colours by a random exposure and white balance (both image sizes alike)."""
    rng = np.random.default_rng(_SEED)
    for name in sorted(train_names(scene, llffhold)):
        gains = np.exp(rng.uniform(*np.log(EXPOSURE))) * rng.uniform(1 - WHITE_BALANCE, 1 + WHITE_BALANCE, 3)
        for folder in ("images", "images_2"):
            path = scene / folder / name
            rgb = np.asarray(PILImage.open(path).convert("RGB"), np.float32) * gains
            PILImage.fromarray(np.clip(np.round(rgb), 0, 255).astype(np.uint8)).save(path)


def write_capture(kind: str, out: pathlib.Path, llffhold: int) -> pathlib.Path:
    """A copy of the built-in unbounded scene in `out/kind`, degraded as `kind` says."""
    from mipnerf.datasets.builtin import demo360

    scene = out / kind
    shutil.copytree(demo360.demo360_scene_dir(), scene)
    if kind == "poses":
        perturb_poses(scene, llffhold)
    elif kind == "exposure":
        vary_exposure(scene, llffhold)
    return scene


def run_one(base, scene: pathlib.Path, exp_dir: pathlib.Path, on: bool) -> dict:
    from mipnerf.commands import evaluate, train

    config = base.copy_and_resolve_references()
    config.dataset, config.data_dir, config.exp_dir = "colmap", str(scene), str(exp_dir)
    config.pose_refine = on
    config.appearance_dim = _APPEARANCE_DIM.value if on else 0
    config.appearance_affine = on
    config.eval_pose_steps = 0  # the test poses are exact here: score them as given
    start = time.time()
    train.train(config, log=lambda s: None)
    train_s = time.time() - start
    result = evaluate.evaluate(config, log=lambda s: None)
    return {key: result[key] for key in evaluate.figures(evaluate.lpips_nets(config))} | {"train_s": train_s}


def main(argv):
    del argv
    base = _CONFIG.value
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for kind in _ROWS.value:
            scene = write_capture(kind, tmp, base.llffhold)
            for on in (mode == "on" for mode in _MODES.value):
                key = f"{kind}_{'on' if on else 'off'}"
                results[key] = run_one(base, scene, tmp / key, on)
                r = results[key]
                print(f"{kind:9s} corrections {'on ' if on else 'off'}: test PSNR {r['psnr']:.2f} dB, colour-corrected "
                      f"{r['psnr_color_corrected']:.2f} dB, LPIPS {r.get('lpips_alex', float('nan')):.4f} (alex) "
                      f"({r['train_s']:.0f} s)", flush=True)
    print(table(results))
    print(json.dumps(dict(results, steps=base.max_steps, **goals(results))))


def goals(results: dict) -> dict:
    """The recovered share of the PSNR lost to each fault, and the clean data's change, where the rows ran."""
    out = {}

    def recovered(kind, metric):
        clean, off, on = (results[k][metric] for k in ("clean_off", f"{kind}_off", f"{kind}_on"))
        return (on - off) / max(clean - off, 1e-6)

    if "clean_off" in results and "poses_on" in results:
        out["poses_recovered"] = recovered("poses", "psnr")
    if "clean_off" in results and "exposure_on" in results:
        out["exposure_recovered"] = recovered("exposure", "psnr_color_corrected")
    if "clean_on" in results:
        out["clean_change_db"] = results["clean_on"]["psnr"] - results["clean_off"]["psnr"]
    return out


def table(results: dict) -> str:
    lines = ["capture    corrections  test PSNR  colour-corrected PSNR  LPIPS (alex)  LPIPS (vgg)"]
    for key, r in results.items():
        kind, on = key.rsplit("_", 1)
        lines.append(f"{kind:10s} {on:11s}  {r['psnr']:9.2f}  {r['psnr_color_corrected']:21.2f}  "
                     f"{r.get('lpips_alex', float('nan')):12.4f}  {r.get('lpips_vgg', float('nan')):11.4f}")
    return "\n".join(lines)


if __name__ == "__main__":
    run(main)
