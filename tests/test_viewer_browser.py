"""view.py in a real browser: headless Chromium (Debian's, software WebGL) driven by Playwright.

The page must show the render of the camera the viewer was asked for (compared with the package's
own render of that camera), follow mouse drags, fly to a clicked training camera and save a
keyframed path that render.py renders. On a failure the page's screenshot is kept.
"""

import contextlib
import io
import pathlib
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from typing import NamedTuple, Optional

import numpy as np
import pytest
from PIL import Image

from configs import demo as demo_config
from helpers import ROOT
from mipnerf import datasets, metrics
from mipnerf.cameras import camera, orbits, path_files
from mipnerf.commands import render, run_config
from mipnerf.render import rendering
from mipnerf.viewer import browser_camera, server

# Debian's package where there is one (tests/install_browser.sh installs it), else Playwright's own download.
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox"]
VIEWPORT = {"width": 640, "height": 260}  # the controls dock to the right; the view is the rest
WAIT_S = 120.0


def serve(exp_dir):
    """view.py serving the run in `exp_dir` on a free port until the generator is closed: yields
    (url, config of the run, the line view.py printed)."""
    proc = subprocess.Popen([sys.executable, "view.py", f"--config.exp_dir={exp_dir}", "--config.viewer_port=0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        line = lines.get(timeout=WAIT_S)
    except queue.Empty:
        proc.kill()
        pytest.fail(f"view.py printed no address within {WAIT_S} s: {proc.stderr.read()}")
    url = re.search(r"http://\S+", line)
    assert url, line
    config = demo_config.get_config()
    config.exp_dir = str(exp_dir)
    yield url.group(0), run_config.for_restore(config, explicit=("exp_dir",)), line
    proc.terminate()
    proc.wait(timeout=30)
    assert proc.returncode == 143, proc.stderr.read()


@pytest.fixture(scope="module")
def served(trained_run):
    """view.py serving the tiny trained run on a free port: (url, config of the run)."""
    for url, config, _ in serve(trained_run):
        yield url, config


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, served, request, tmp_path):
    page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
    page.goto(served[0])
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        shot = tmp_path / "page.png"
        page.screenshot(path=shot)
        print(f"screenshot of the page: {shot}")
    page.close()


@pytest.fixture(scope="module")
def reference(served):
    """The package's own renderer and training split for the served run."""
    config = served[1]
    return rendering.load_renderer(config, log=lambda s: None), datasets.load_split(config, "train"), config


def wait_for(page, pattern: str) -> re.Match:
    """Waits until the page's text matches `pattern`."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        text = page.inner_text("body")
        match = re.search(pattern, text)
        if match:
            return match
        time.sleep(0.2)
    pytest.fail(f"the page never showed {pattern!r}; it shows: {page.inner_text('body')[:500]}")


VECTOR = r"\(([-\d.]+), ([-\d.]+), ([-\d.]+)\)"
STILL = (rf"Still frame (\d+) complete: step \d+, (\d+)×(\d+) in .*\s+Camera at {VECTOR} looking {VECTOR} "
         rf"up {VECTOR}, fov ([\d.]+)°; training cameras (shown|hidden)\.")
STEP = r"rame \d+(?: complete)?: step (\d+)"  # in the status line of a moving or still frame
POSE_ATOL = 2e-3  # the status line gives the camera to 4 decimals


class Still(NamedTuple):
    """A still frame that a page's status line says is complete."""
    number: int
    width: int
    height: int
    position: np.ndarray
    forward: np.ndarray
    up: np.ndarray
    fov: float  # vertical, radians
    cameras_shown: bool  # whether the training cameras are drawn over it

    @classmethod
    def of(cls, match: re.Match) -> "Still":
        v = [float(x) for x in match.groups()[3:13]]
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3)), np.array(v[0:3]),
                   np.array(v[3:6]), np.array(v[6:9]), np.radians(v[9]), match.group(14) == "shown")

    def is_of(self, c2w, fov: float) -> bool:
        """Whether this frame is of the camera `c2w` (camera-to-world, OpenGL) with vertical `fov`."""
        c2w = np.asarray(c2w, np.float64)
        return (np.allclose(self.position, c2w[:3, 3], atol=POSE_ATOL)
                and np.allclose(self.forward, -c2w[:3, 2], atol=POSE_ATOL)
                and np.allclose(self.up, c2w[:3, 1], atol=POSE_ATOL) and abs(self.fov - fov) < 1e-4)


def wait_for_still(page, c2w=None, fov: Optional[float] = None, cameras_shown: Optional[bool] = None,
                   after: int = 0) -> Still:
    """Waits until the page's status line says its still frame is complete: numbered above `after`,
    of the camera `c2w` with `fov` and with the training cameras shown or not (each when given);
    then until the page has drawn it. The line is the page's own, sent after that frame's image."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        match = re.search(STILL, page.inner_text("body"))
        still = match and Still.of(match)
        if (still and still.number > after and (c2w is None or still.is_of(c2w, fov))
                and cameras_shown in (None, still.cameras_shown)):
            drawn(page)
            return still
        time.sleep(0.1)
    pytest.fail(f"the page never said its still frame of {c2w} (fov {fov}, training cameras shown: {cameras_shown}, "
                f"after frame {after}) was complete; it shows: {page.inner_text('body')[:500]}")


def drawn(page) -> None:
    """Waits for the page to draw twice: time for the image that came just before its status line
    (decoded asynchronously) to reach the canvas."""
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def view_pixels(page) -> np.ndarray:
    """The 3D view's pixels, [H, W, 3] in [0, 1], without the controls."""
    box = page.locator("canvas").first.bounding_box()
    shot = page.screenshot(clip=box)
    return np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), np.float32) / 255


def settle(page, c2w, fov: float, hide_cameras: bool = True) -> Still:
    """Waits for the page's still frame of camera `c2w` with `fov`, closes the software-WebGL notice
    and shows or hides the training cameras (the control is shared by all pages); returns that frame
    once the page shows it with the training cameras so."""
    wait_for_still(page, c2w, fov)
    close_notice(page)
    page.get_by_label("Training cameras").set_checked(not hide_cameras)
    return wait_for_still(page, c2w, fov, cameras_shown=not hide_cameras)


def close_notice(page) -> None:
    """Closes the software-WebGL notice over the view's top left, if shown."""
    notice = page.locator(".mantine-Notification-closeButton")
    if notice.count():
        notice.first.click()
        notice.first.wait_for(state="detached")


def start_view(reference) -> tuple[np.ndarray, float]:
    """The camera a page opens with: the first training camera's (camera-to-world, vertical fov)."""
    _, train, _ = reference
    return train.camtoworlds[0], browser_camera.vertical_fov(float(train.intrinsics.fy[0]), train.height)


def package_render(reference, c2w, fov, width, height) -> np.ndarray:
    renderer, _, config = reference
    intrinsics = camera.Intrinsics.pinhole(camera.focal_from_fov(height, fov), width, height)
    image, = rendering.render_views(renderer, np.asarray(c2w)[None], intrinsics, height, width, config, desc="reference")
    return image.rgb


def test_the_page_shows_the_render_of_the_first_training_camera(page, reference):
    _, train, _ = reference
    c2w, fov = start_view(reference)
    still = settle(page, c2w, fov)
    width, height = still.width, still.height
    shown = view_pixels(page)
    assert shown.shape == (height, width, 3)  # the still frame is the view's own size
    expected = package_render(reference, c2w, fov, width, height)
    assert metrics.psnr(shown, expected) >= 30.0
    # Not just any render: the second training camera's view is far from it.
    other = package_render(reference, train.camtoworlds[1], fov, width, height)
    assert metrics.psnr(shown, other) < 25.0


def test_dragging_the_mouse_changes_the_view(page, reference):
    first = settle(page, *start_view(reference), hide_cameras=False)
    before = view_pixels(page)
    box = page.locator("canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.75
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y + 10, steps=10)
    page.mouse.up()
    wait_for(page, r"moving \d+×\d+")
    wait_for_still(page, after=first.number)
    assert np.mean(np.abs(view_pixels(page) - before)) > 0.02


def frustum_centre_on_screen(train, k, c2w0, fov, width, height, scale):
    """Where the image of training camera k's frustum (at `scale` along its view) appears from camera 0."""
    c2w = np.asarray(train.camtoworlds[k], np.float64)
    point = c2w[:3, 3] - scale * c2w[:3, 2]
    intrinsics = camera.Intrinsics.pinhole(camera.focal_from_fov(height, fov), width, height)
    return camera.project(point[None], np.asarray(c2w0, np.float64), intrinsics)[0]


def test_clicking_a_training_camera_flies_to_it_and_scores_it(page, reference):
    renderer, train, config = reference
    _, fov = start_view(reference)
    still = settle(page, train.camtoworlds[0], fov, hide_cameras=False)
    width, height = still.width, still.height
    c2ws = np.asarray(train.camtoworlds, np.float64)
    centre = orbits.scene_center(c2ws)
    scale = server.FRUSTUM_SCALE * float(np.median(np.linalg.norm(c2ws[:, :3, 3] - centre, axis=-1)))
    box = page.locator("canvas").first.bounding_box()
    targets = []
    in_the_way = browser_camera.frustums_in_the_way(c2ws, [browser_camera.vertical_fov(float(fy), train.height)
                                                           for fy in np.asarray(train.intrinsics.fy)],
                                                    scale, c2ws[0], fov, server.FRUSTUM_SHARE)
    for k in range(1, len(c2ws)):
        shown = not in_the_way[k]
        u, v = frustum_centre_on_screen(train, k, c2ws[0], fov, width, height, scale)
        in_front = (c2ws[k, :3, 3] - c2ws[0, :3, 3]) @ -c2ws[0, :3, 2] > 0
        if in_front and shown and 15 < u < width - 15 and 15 < v < height - 15:
            targets.append((np.linalg.norm(c2ws[k, :3, 3] - c2ws[0, :3, 3]), k, u, v))
    assert targets, "no training camera in view of the first"
    _, k, u, v = min(targets)  # the nearest, which no other frustum hides
    page.mouse.click(box["x"] + u, box["y"] + v)
    match = wait_for(page, rf"Training camera {k}: PSNR ([\d.]+) dB")
    # The score is the PSNR of the render of that camera against its image.
    image, = rendering.render_views(renderer, c2ws[k][None], train.intrinsics.take([k]), train.height, train.width,
                                    config, desc="score")
    assert float(match.group(1)) == pytest.approx(metrics.psnr(image.rgb, train.colors(k)), abs=0.01)
    # And the view is now that camera's.
    fov_k = browser_camera.vertical_fov(float(train.intrinsics.fy[k]), train.height)
    settle(page, c2ws[k], fov_k)
    assert metrics.psnr(view_pixels(page), package_render(reference, c2ws[k], fov_k, width, height)) >= 30.0


def test_a_keyframed_path_saved_from_the_page_renders_with_render_py(page, reference, served, tmp_path):
    _, _, config = reference
    still = settle(page, *start_view(reference))
    width, height = still.width, still.height
    first_view = view_pixels(page)
    page.get_by_text("Camera path").click()  # open the folder
    page.get_by_role("button", name="Add keyframe").click()
    wait_for(page, r"1 keyframe\(s\)")
    box = page.locator("canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 40, y, steps=8)
    page.mouse.up()
    time.sleep(0.5)
    page.get_by_role("button", name="Add keyframe").click()
    wait_for(page, r"2 keyframe\(s\)")
    page.get_by_role("button", name="Save path").click()
    saved = wait_for(page, r"Saved (\S+\.json)")
    path = path_files.load(saved.group(1).strip("`"))
    assert (path.width, path.height) == (width, height) and len(path.keyframes) == 2
    # The path starts at the view the page showed.
    config = config.copy_and_resolve_references()
    config.render_path_file = saved.group(1).strip("`")
    c2ws, intrinsics, h, w, _ = render.file_views(render.path_file(config), config)
    frame, = rendering.render_views(reference[0], c2ws[:1], intrinsics.take(0), h, w, config, desc="path")
    assert metrics.psnr(first_view, frame.rgb) >= 30.0
    # And render.py renders the file to videos.
    result = subprocess.run([sys.executable, "render.py", f"--config.exp_dir={config.exp_dir}", "--config.render_path=file",
                             f"--config.render_path_file=camera_paths/{path_name(saved)}", "--config.render_factor=4"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    stem = path_name(saved).removesuffix(".json")
    for name in (f"{stem}_color.mp4", f"{stem}_color.gif", f"{stem}_depth.mp4", f"{stem}_depth.gif"):
        assert (pathlib.Path(config.exp_dir) / "render" / name).stat().st_size > 0


def path_name(saved: re.Match) -> str:
    return saved.group(1).strip("`").rsplit("/", 1)[-1]


@contextlib.contextmanager
def new_page(browser, tmp_path):
    """A page of its own, closed at the end; a screenshot of it saved (and its path printed) when the block fails."""
    page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
    try:
        yield page
    except BaseException:
        page.screenshot(path=tmp_path / "page.png")
        print(f"screenshot of the page: {tmp_path / 'page.png'}")
        raise
    finally:
        page.close()


def test_training_with_the_viewer_shows_newer_steps(browser, tiny_scene, tmp_path):
    proc = subprocess.Popen([sys.executable, "train.py", "--config=tests/helpers.py", f"--config.data_dir={tiny_scene}",
                             f"--config.exp_dir={tmp_path}", "--config.viewer=True", "--config.viewer_port=0",
                             "--config.max_steps=1000000", "--config.checkpoint_every=1000000"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        with new_page(browser, tmp_path) as page:
            url = re.search(r"viewer: (http://\S+)", lines.get(timeout=WAIT_S))
            assert url
            page.goto(url.group(1))
            first = int(wait_for(page, STEP).group(1))
            deadline = time.monotonic() + WAIT_S
            while int(wait_for(page, STEP).group(1)) <= first:  # the view follows training
                assert time.monotonic() < deadline, "the view never showed a newer step"
                time.sleep(0.5)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr  # SIGTERM: saved and stopped
    assert "saved checkpoint" in stderr


SPLATS = 400


@pytest.fixture(scope="module")
def served_with_splats(trained_run, tmp_path_factory):
    """view.py serving a copy of the tiny trained run with splats (export/splats.ply): a red ball at
    the point the first training camera looks at. Yields (url, config, the line view.py printed)."""
    from mipnerf.render import gaussians, splat_file

    run = tmp_path_factory.mktemp("splats") / "run"
    shutil.copytree(trained_run, run)
    config = demo_config.get_config()
    config.exp_dir = str(run)
    train = datasets.load_split(run_config.for_restore(config, explicit=("exp_dir",)), "train")
    c2w = np.asarray(train.camtoworlds[0], np.float64)
    centre = orbits.scene_center(np.asarray(train.camtoworlds, np.float64))
    target = c2w[:3, 3] - ((centre - c2w[:3, 3]) @ -c2w[:3, 2]) * c2w[:3, 2]
    rng = np.random.default_rng(0)
    size = 0.1 * float(np.linalg.norm(centre - c2w[:3, 3]))
    red = np.broadcast_to(gaussians.rgb_to_sh_dc(np.array([1.0, 0.0, 0.0])), (SPLATS, 1, 3))
    splats = gaussians.Splats(means=(target + 0.3 * size * rng.normal(size=(SPLATS, 3))).astype(np.float32),
                              log_scales=np.full((SPLATS, 3), np.log(0.3 * size), np.float32),
                              quats=np.tile(np.float32([1, 0, 0, 0]), (SPLATS, 1)),
                              opacity_logits=np.full(SPLATS, 6.0, np.float32), sh=np.asarray(red, np.float32))
    (run / "export").mkdir(exist_ok=True)  # the shared run may have exported already
    splat_file.write_splats(run / "export" / "splats.ply", splats)
    yield from serve(run)


def centre_pixel(page) -> np.ndarray:
    pixels = view_pixels(page)
    return pixels[pixels.shape[0] // 2, pixels.shape[1] // 2]


def wait_for_centre(page, red: bool) -> None:
    """Waits until the view's centre pixel is red (the splats drawn) or not."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        r, g, b = centre_pixel(page)
        if (r > 0.7 and g < 0.3 and b < 0.3) == red:
            return
        time.sleep(0.2)
    pytest.fail(f"the view's centre never turned {'red' if red else 'other than red'}: {centre_pixel(page)}")


def choose(page, label: str, option: str) -> None:
    """Picks `option` in the dropdown `label` of the controls."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_a_run_with_splats_shows_them_and_the_show_control_switches_to_the_nerf(browser, served_with_splats, reference,
                                                                                  tmp_path):
    url, _, line = served_with_splats
    assert f"showing its {SPLATS} splats (export/splats.ply)" in line
    with new_page(browser, tmp_path) as page:
        page.goto(url)
        wait_for(page, rf"Showing {SPLATS} splats \(export/splats.ply\), drawn by the browser\.")
        close_notice(page)
        page.get_by_label("Training cameras").set_checked(False)
        wait_for_centre(page, red=True)  # the ball, drawn by the browser where the NeRF's camera 0 looks
        # The NeRF: the splats hidden, the render of the same camera.
        choose(page, "Show", "NeRF")
        c2w, fov = start_view(reference)
        still = wait_for_still(page, c2w, fov, cameras_shown=False)
        assert metrics.psnr(view_pixels(page), package_render(reference, c2w, fov, still.width, still.height)) >= 30.0
        # And back: the splats again, over no NeRF image.
        choose(page, "Show", "Splats")
        wait_for(page, rf"Showing {SPLATS} splats")
        wait_for_centre(page, red=True)
        corner = view_pixels(page)[5, 5]
        assert np.all(corner > 0.9), corner  # viser's white background, no render behind the splats
