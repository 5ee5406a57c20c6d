"""view.py: a trained run's newest checkpoint served in the browser until Ctrl-C.

Where the run has splats (exp_dir/export/splats.ply, from `export.py --config.export=splats`), the
viewer shows them first: the browser draws them itself (viser's Gaussian-splat renderer, each
splat in its constant-band colour), so the view follows the mouse at the browser's frame rate. The
"Show" control switches to the NeRF's progressive render of the same camera, and back.
"""

import pathlib
import time
from typing import Optional

from mipnerf import datasets
from mipnerf.commands import run_config
from mipnerf.commands.config_checks import check_config
from mipnerf.errors import ConfigError
from mipnerf.render import gaussians, rendering, splat_file

SPLATS_FILE = splat_file.RUN_FILE  # under exp_dir


def run_splats(exp_dir, train: datasets.Split, log=print) -> Optional[gaussians.Splats]:
    """The run's splats (`SPLATS_FILE`, written in the capture's world frame) moved into the model's
    frame, the frame of `train`'s cameras and of the viewer; None where the run has none, or (with a
    line to `log`) where the file cannot be read."""
    if not (pathlib.Path(exp_dir) / SPLATS_FILE).is_file():
        return None
    try:
        return splat_file.read_run_splats(exp_dir, train)
    except ConfigError as e:
        log(f"viewer: not showing the splats: {e}")
        return None


def serve(config, explicit=None, log=lambda message: print(message, flush=True), forever: bool = True):
    """Restores the newest whole checkpoint of `config.exp_dir` (model and scene from its config.json),
    starts the viewer (with the run's splats, shown first, where it has them: `run_splats`) and
    prints its address; with `forever`, renders for browsers until interrupted.

    Returns the `viewer.Viewer` (when not `forever`), for tests and tools that drive it.
    """
    from mipnerf.viewer import server as viewer_lib  # viser starts threads: import only when serving

    config = run_config.for_restore(config, explicit)
    check_config(config, explicit or ())
    renderer = rendering.load_renderer(config, log)
    train = datasets.load_split(config, "train")
    splats = run_splats(config.exp_dir, train, log)
    viewer = viewer_lib.Viewer(config, train, renderer.render_fn, renderer.mesh, splats=splats,
                               splats_name=str(SPLATS_FILE))
    viewer.set_params(renderer.params, renderer.step)
    shown = "" if splats is None else (f"; showing its {len(splats.means):,} splats ({SPLATS_FILE}), drawn by the "
                                       f"browser: the \"Show\" control switches to the NeRF")
    log(f"viewer: {viewer.url} (step {renderer.step} of {config.exp_dir}{shown}); Ctrl-C stops it")
    if not forever:
        return viewer
    try:
        while True:
            if not viewer.poll(0.1):
                time.sleep(0.01)
    finally:
        viewer.close()
