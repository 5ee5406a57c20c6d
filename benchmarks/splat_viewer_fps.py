"""The viewer's frame rate with 3D Gaussian splats, in headless Chromium with software WebGL.

    python benchmarks/splat_viewer_fps.py [--count=30000] [--seconds=10] [--width=1000 --height=600]
    python benchmarks/splat_viewer_fps.py --splats=exp/run/export/splats.ply
    python benchmarks/splat_viewer_fps.py --exp_dir=exp/run   # view.py's viewer: the splats and the NeRF

The page is viser's, as view.py serves it, in Debian's Chromium (tests/install_browser.sh) driven
by Playwright with WebGL in SwiftShader (what headless Chromium uses without a GPU; on a CPU-only
machine it takes CPU time from everything else). The splats are `--count` random ones (a Gaussian
ball of them, seen from 2.5 times its 90th-percentile radius), those of a splats file, or with
`--exp_dir` a run's, served by view.py's `Viewer` with the NeRF behind the "Show" control.

For each state the page counts its requestAnimationFrame callbacks over `--seconds`, and those in
which WebGL drew (`drawn_fps`: viser draws when the view changes, and about once a second when it
does not, so for a still camera only the first figure says the page is idle, not how fast it
draws). "still": the camera at rest; "orbiting": the camera turning about its look-at point at
36°/s, set by the server 60 times a second (`--orbit=server`, as someone flying through, without
waiting on the page) or by Playwright dragging the mouse (`--orbit=mouse`, each move waiting for
the page to take it). Also the median and 90th-percentile time between drawn frames and the
camera updates per second the server received back. With the splats taken out of the scene (as
the viewer does when the NeRF is shown) the same counts give the page's own cost; with
`--exp_dir` the NeRF is shown instead (the "Show" control), and "NeRF orbiting" also counts the
NeRF frames the viewer sent per second. Prints the load average (a shared machine's other work
takes CPU from the software renderer), one line per figure, then JSON.
"""

import contextlib
import io
import json
import os
import pathlib
import shutil
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import viser  # noqa: E402
from absl import app, flags  # noqa: E402

from configs import demo as demo_config  # noqa: E402
from mipnerf.commands import view  # noqa: E402
from mipnerf.render import gaussians, splat_file  # noqa: E402
from mipnerf.viewer import server  # noqa: E402

_COUNT = flags.DEFINE_integer("count", 30000, "Random splats, without --splats or --exp_dir.")
_SPLATS = flags.DEFINE_string("splats", "", "A splats PLY (3DGS layout) to show instead of random ones.")
_EXP_DIR = flags.DEFINE_string("exp_dir", "", "A trained run with export/splats.ply: view.py's viewer of it.")
_SECONDS = flags.DEFINE_float("seconds", 10.0, "Seconds each state is counted over.")
_WIDTH = flags.DEFINE_integer("width", 1000, "The page's width in CSS pixels (the controls take ~320 on the right).")
_HEIGHT = flags.DEFINE_integer("height", 600, "The page's height in CSS pixels.")
_ORBIT = flags.DEFINE_enum("orbit", "server", ["server", "mouse"], "How the camera orbits: set by the server "
                           "60 times a second, or by the mouse dragging (each move waits for the page).")
_SCREENSHOT = flags.DEFINE_string("screenshot", "", "Where to save a PNG of the page showing the splats from the "
                                  "first view (with --exp_dir, the first training camera's), before measuring.")

CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox"]
COUNTER_JS = """() => {
  if (window.__frames !== undefined) return;
  // Each animation frame's time, and whether WebGL drew in it (the page may skip drawing a frame).
  window.__frames = []; window.__drew = []; let drew = false;
  for (const proto of [WebGLRenderingContext.prototype, WebGL2RenderingContext.prototype]) {
    for (const name of ["drawArrays", "drawElements", "drawArraysInstanced", "drawElementsInstanced"]) {
      const draw = proto[name];
      if (draw) proto[name] = function (...args) { drew = true; return draw.apply(this, args); };
    }
  }
  const tick = (t) => { window.__frames.push(t); window.__drew.push(drew); drew = false; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
}"""


def random_splats(count: int, seed: int = 0):
    """`count` splats in a unit Gaussian ball about the origin, sizes and opacities spread as a
    trained scene's are (log-normal scales about 1/50 of the ball, opacities from logits N(0, 2))."""
    rng = np.random.default_rng(seed)
    return gaussians.Splats(
        means=rng.normal(size=(count, 3)).astype(np.float32),
        log_scales=(np.log(0.02) + 0.5 * rng.normal(size=(count, 3))).astype(np.float32),
        quats=rng.normal(size=(count, 4)).astype(np.float32),
        opacity_logits=(2.0 * rng.normal(size=count)).astype(np.float32),
        sh=rng.normal(scale=0.8, size=(count, 1, 3)).astype(np.float32))


class BareViewer:
    """viser serving the splats alone, laid out as the viewer's page (the controls docked right)."""

    def __init__(self, splats):
        with contextlib.redirect_stdout(io.StringIO()):
            self.server = viser.ViserServer(port=0, verbose=False)
        self.server.gui.configure_theme(show_logo=False, control_width="medium")
        self.server.gui.main_panel.dock_right()
        self.url = f"http://localhost:{self.server.get_port()}"
        self.arrays = server.splat_arrays(splats)
        self.node = self.server.scene.add_gaussian_splats(server.SPLATS_NODE, *self.arrays)
        extent = float(np.percentile(np.linalg.norm(splats.means - np.median(splats.means, 0), axis=-1), 90))
        self.centre, self.distance = np.median(splats.means, 0), 2.5 * max(extent, 1e-3)
        self.server.on_client_connect(self._connect)

    def _connect(self, client) -> None:
        client.camera.position = self.centre + self.distance * np.float64([0.0, -1.0, 0.4]) / np.sqrt(1.16)
        client.camera.look_at = self.centre

    def show_splats(self, shown: bool) -> None:
        """Adds the splats to the scene or takes them out, as the viewer's "Show" control does."""
        if shown and self.node is None:
            self.node = self.server.scene.add_gaussian_splats(server.SPLATS_NODE, *self.arrays)
        elif not shown and self.node is not None:
            self.node.remove()
            self.node = None

    def close(self) -> None:
        self.server.stop()


def orbit_cameras(server, stop: threading.Event, rate_hz: float = 60.0, deg_per_s: float = 36.0) -> None:
    """Turns every browser's camera about its look-at point and up direction, `rate_hz` times a
    second, until `stop`: what a mouse dragging all the time does, without waiting on the page."""
    starts = {}
    tic = time.perf_counter()
    while not stop.is_set():
        angle = np.radians(deg_per_s) * (time.perf_counter() - tic)
        for client_id, client in server.get_clients().items():
            cam = client.camera
            if client_id not in starts:
                starts[client_id] = (np.asarray(cam.position), np.asarray(cam.look_at), np.asarray(cam.up_direction))
            position, centre, up = starts[client_id]
            k = up / np.linalg.norm(up)
            v = position - centre  # Rodrigues' rotation of v about k
            turned = v * np.cos(angle) + np.cross(k, v) * np.sin(angle) + k * (k @ v) * (1 - np.cos(angle))
            with client.atomic():
                cam.position = centre + turned
                cam.look_at = centre
        time.sleep(1.0 / rate_hz)


def measure(page, server, seconds: float, orbit: str, camera_updates) -> dict:
    """Animation frames per second over `seconds` (all, and those WebGL drew in), the median and
    90th-percentile time between drawn frames (ms) and the camera updates per second the server
    received. `orbit`: "" (the camera still), "server" (`orbit_cameras`) or "mouse" (Playwright
    dragging the mouse all the time, each move waiting for the page to take it)."""
    box = page.locator("canvas").first.bounding_box()
    page.evaluate(COUNTER_JS)
    stop = threading.Event()
    if orbit == "server":
        threading.Thread(target=orbit_cameras, args=(server, stop), daemon=True).start()
    time.sleep(0.5)
    page.evaluate("() => { window.__frames = []; window.__drew = []; }")
    updates0, tic = camera_updates(), time.perf_counter()
    x, y = box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"]
    while time.perf_counter() - tic < seconds:
        if orbit == "mouse":
            page.mouse.move(x - 60, y)
            page.mouse.down()
            page.mouse.move(x + 60, y + 10, steps=12)
            page.mouse.move(x - 60, y, steps=12)
            page.mouse.up()
        else:
            time.sleep(0.1)
    frames, drew = page.evaluate("() => [window.__frames, window.__drew]")
    elapsed = time.perf_counter() - tic
    stop.set()
    updates = camera_updates() - updates0
    frames, drew = np.asarray(frames), np.asarray(drew, bool)
    span = (frames[-1] - frames[0]) / 1000 if len(frames) > 1 else np.nan
    drawn = frames[1:][drew[1:]]  # the frames WebGL drew in
    gaps = np.diff(drawn) if len(drawn) > 1 else np.array([np.nan])
    return {"fps": round(float((len(frames) - 1) / span), 2), "drawn_fps": round(float(len(drawn) / span), 2),
            "drawn_ms_median": round(float(np.median(gaps)), 1),
            "drawn_ms_p90": round(float(np.percentile(gaps, 90)), 1),
            "camera_updates_per_s": round(updates / elapsed, 2), "canvas": f"{int(box['width'])}x{int(box['height'])}"}


def main(argv):
    del argv
    from playwright.sync_api import sync_playwright

    figures, stop = {}, threading.Event()
    if _EXP_DIR.value:
        config = demo_config.get_config()
        config.exp_dir, config.viewer_port = _EXP_DIR.value, 0
        viewer = view.serve(config, explicit=("exp_dir", "viewer_port"), forever=False)
        if viewer.show is None:
            raise SystemExit(f"{_EXP_DIR.value} has no {view.SPLATS_FILE}")
        count = f"{viewer.splats_count:,} splats ({_EXP_DIR.value}/{view.SPLATS_FILE})"

        def serve():
            while not stop.is_set():
                if not viewer.poll(0.1):
                    time.sleep(0.01)

        server_thread = threading.Thread(target=serve, daemon=True)
        server_thread.start()

        def show_splats(shown: bool) -> None:
            viewer.show.value = server.SHOW_SPLATS if shown else server.SHOW_NERF
    else:
        splats = splat_file.read_splats(_SPLATS.value) if _SPLATS.value else random_splats(_COUNT.value)
        count = f"{len(splats.means):,} splats ({_SPLATS.value or 'random'})"
        viewer = BareViewer(splats)
        show_splats = viewer.show_splats
    updates = [0]

    def count_updates(client) -> None:
        client.camera.on_update(lambda camera: updates.__setitem__(0, updates[0] + 1))

    viewer.server.on_client_connect(count_updates)
    print(f"{count}; page {_WIDTH.value}x{_HEIGHT.value}; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs", flush=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": _WIDTH.value, "height": _HEIGHT.value}, device_scale_factor=1)
            page.goto(viewer.url)
            page.wait_for_selector("canvas", timeout=300_000)
            time.sleep(5.0)  # the splats' buffer sent and sorted once
            notice = page.locator(".mantine-Notification-closeButton")  # the software-WebGL notice
            if notice.count():
                notice.first.click()
            if _SCREENSHOT.value:  # the first view, the splats shown (without the training cameras)
                if _EXP_DIR.value:
                    viewer.show_cameras.value = False
                time.sleep(3.0)
                page.screenshot(path=_SCREENSHOT.value)
            other = "NeRF" if _EXP_DIR.value else "no splats"
            orbiting = _ORBIT.value
            states = [("splats still", True, ""), ("splats orbiting", True, orbiting),
                      (f"{other} still", False, ""), (f"{other} orbiting", False, orbiting)]
            for name, shown, orbit in states:
                show_splats(shown)
                time.sleep(1.0)
                if _EXP_DIR.value and not shown and not orbit:
                    # A warm-up: the NeRF's first frames of each size compile its render calls.
                    measure(page, viewer.server, _SECONDS.value, orbiting, lambda: updates[0])
                    time.sleep(2.0)
                frames = viewer.frames if _EXP_DIR.value else 0
                tic = time.perf_counter()
                figures[name] = measure(page, viewer.server, _SECONDS.value, orbit, lambda: updates[0])
                if _EXP_DIR.value and not shown:
                    rate = (viewer.frames - frames) / (time.perf_counter() - tic)
                    figures[name]["nerf_frames_per_s"] = round(rate, 2)
                print(f"{name}: {figures[name]}", flush=True)
            browser.close()
    finally:
        stop.set()
        if _EXP_DIR.value:
            server_thread.join()  # a NeRF frame in flight at exit aborts the process
        viewer.close()
    figures["splats"], figures["load_average_after"] = count, os.getloadavg()[0]
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    app.run(main)
