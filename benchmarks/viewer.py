"""What the viewer costs training: rays/s of the training step with the viewer off, on with no
browser, on with a browser watching (the view re-rendered with new parameters every few seconds),
and on with a browser flying (the mouse dragging all the time).

    python benchmarks/viewer.py [--config=configs/demo.py] [--steps=60]

The browser is headless Chromium driven by Playwright (tests/install_browser.sh installs it),
with WebGL in software, so on a CPU-only machine it also takes CPU time from training, as a
browser on the same machine would. Every figure is over the same number of steps after a warm-up,
and each mode's ratio is to "off" measured in the same run; `*_viewer_time_share` is the share of
the wall time the viewer spent rendering (the rest of the slowdown is the browser's own CPU use).
Prints one line per figure, then JSON.
"""

import json
import pathlib
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import flags  # noqa: E402

from benchmarks.common import Figures  # noqa: E402
from mipnerf.commands.cli import define_config, run  # noqa: E402

_CONFIG = define_config("configs/demo.py")
_STEPS = flags.DEFINE_integer("steps", 60, "Timed training steps per mode, after a warm-up.")


def browse(url: str, stop: threading.Event, fly: bool, ready: threading.Event) -> None:
    """A headless browser on the viewer's page until `stop`; with `fly`, dragging the mouse in circles."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                    args=["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 600})
        page.goto(url)
        page.wait_for_selector("text=Frame", timeout=300_000)
        ready.set()
        x, y = 300, 300
        while not stop.is_set():
            if fly:
                page.mouse.move(x, y)
                page.mouse.down()
                page.mouse.move(x + 40, y + 10, steps=8)
                page.mouse.move(x, y, steps=8)
                page.mouse.up()
            else:
                time.sleep(0.1)
        browser.close()


def main(argv):
    del argv
    import jax

    from mipnerf import datasets
    from mipnerf.model import mipnerf360
    from mipnerf.render import rendering
    from mipnerf.training import distributed, train_images, update
    from mipnerf.viewer import server as viewer_lib

    config = _CONFIG.value
    config.unlock()
    config.exp_dir = tempfile.mkdtemp()
    config.viewer_port = 0
    config.lock()
    mesh = distributed.make_mesh()
    split = datasets.load_split(config, "train")
    data = train_images.put_train_images([split], config, mesh)
    model = mipnerf360.build_model(config)
    state, tx = update.create_train_state(config, model, mesh)
    train_step = update.make_train_step(config, model, tx, mesh)
    viewer = viewer_lib.Viewer(config, split, rendering.make_render_fn(config, model), mesh, training=True)

    def timed(with_viewer: bool, steps: int, mode: str = "") -> float:
        """Training rays/s over `steps` steps; with a `mode`, also the share of the time the viewer rendered."""
        nonlocal state
        start, viewer_start = time.perf_counter(), viewer.seconds
        for step in range(steps):
            if with_viewer:
                viewer.training_step(state.params, step)
            state, _ = train_step(state, data)
        jax.block_until_ready(state)
        seconds = time.perf_counter() - start
        if mode:
            figures[f"{mode}_viewer_time_share"] = (viewer.seconds - viewer_start) / seconds
        return steps * config.batch_size / seconds

    figures = Figures()
    figures.update(device=jax.devices()[0].device_kind, batch_size=config.batch_size, steps=_STEPS.value)
    timed(False, 3)  # compiles
    figures["off_rays_per_s"] = timed(False, _STEPS.value)
    figures["idle_rays_per_s"] = timed(True, _STEPS.value)
    for mode in ("watching", "flying"):
        stop, ready = threading.Event(), threading.Event()
        thread = threading.Thread(target=browse, args=(viewer.url, stop, mode == "flying", ready))
        thread.start()
        while not ready.is_set():  # the first frames (and the render function's compiling) are not timed
            viewer.training_step(state.params, 0)
            state, _ = train_step(state, data)
        timed(True, 10)
        figures[f"{mode}_rays_per_s"] = timed(True, _STEPS.value, mode)
        figures[f"{mode}_viewer_rays_per_s"] = viewer.rays_per_s or 0.0
        stop.set()
        thread.join()
    figures["off_again_rays_per_s"] = timed(False, _STEPS.value)
    for mode in ("idle", "watching", "flying", "off_again"):
        figures[f"{mode}_vs_off"] = figures[f"{mode}_rays_per_s"] / figures["off_rays_per_s"]
    viewer.close()
    shutil.rmtree(config.exp_dir, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    run(main)
