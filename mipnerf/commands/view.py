"""view.py: a trained run's newest checkpoint served in the browser until Ctrl-C."""

import time

from mipnerf import datasets
from mipnerf.commands import run_config
from mipnerf.commands.config_checks import check_config
from mipnerf.render import rendering


def serve(config, explicit=None, log=lambda message: print(message, flush=True), forever: bool = True):
    """Restores the newest whole checkpoint of `config.exp_dir` (model and scene from its config.json),
    starts the viewer and prints its address; with `forever`, renders for browsers until interrupted.

    Returns the `viewer.Viewer` (when not `forever`), for tests and tools that drive it.
    """
    from mipnerf.viewer import server as viewer_lib  # viser starts threads: import only when serving

    config = run_config.for_restore(config, explicit)
    check_config(config, explicit or ())
    renderer = rendering.load_renderer(config, log)
    train = datasets.load_split(config, "train")
    viewer = viewer_lib.Viewer(config, train, renderer.render_fn, renderer.mesh)
    viewer.set_params(renderer.params, renderer.step)
    log(f"viewer: {viewer.url} (step {renderer.step} of {config.exp_dir}); Ctrl-C stops it")
    if not forever:
        return viewer
    try:
        while True:
            if not viewer.poll(0.1):
                time.sleep(0.01)
    finally:
        viewer.close()
