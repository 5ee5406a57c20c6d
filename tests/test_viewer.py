"""The viewer without a browser: frame sizes, the one-line errors of view.py, and a run's splats with
the "Show" control that switches between them and the NeRF (a stand-in for a connected browser)."""

import contextlib
import re
import shutil
import socket
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from configs import demo as demo_config
from helpers import ROOT, assert_one_line_error
from mipnerf import datasets
from mipnerf.commands import run_config, view
from mipnerf.render import gaussians, rendering, splat_file
from mipnerf.viewer import browser_camera, server


def test_frame_sizes_keep_the_aspect_and_the_budgets():
    assert server.frame_size(400, 300, np.inf, 2048) == (400, 300)  # the canvas itself
    assert server.frame_size(800, 600, np.inf, 512) == (512, 384)  # capped by the longest side
    width, height = server.frame_size(800, 600, 4800, 512)  # a moving frame's pixel budget
    assert width * height <= 4800 * 1.05 and abs(width / height - 4 / 3) < 0.05
    assert min(server.frame_size(800, 600, 1, 512)) == 8  # never below 8 pixels
    assert server.frame_size(6, 4, 1, 512) == (6, 4)  # nor above a canvas smaller than that


def run_view(*flags):
    return subprocess.run([sys.executable, "view.py", *flags], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_port_in_use_is_one_line_naming_the_flag(trained_run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_view(f"--config.exp_dir={trained_run}", f"--config.viewer_port={port}")
    assert_one_line_error(result, f"config.viewer_port={port}", "--config.viewer_port")


def test_a_run_without_a_checkpoint_is_one_line_naming_the_folder(tmp_path):
    result = run_view(f"--config.exp_dir={tmp_path}", "--config.viewer_port=0")
    assert_one_line_error(result, str(tmp_path))


# --- splats: the "Show" control ------------------------------------------------------------------

def random_splats(n: int, center, size: float, seed: int = 0, degree: int = 1) -> gaussians.Splats:
    rng = np.random.default_rng(seed)
    return gaussians.Splats(
        means=(np.asarray(center) + size * rng.normal(size=(n, 3))).astype(np.float32),
        log_scales=np.log(size * rng.uniform(0.01, 0.05, size=(n, 3))).astype(np.float32),
        quats=rng.normal(size=(n, 4)).astype(np.float32), opacity_logits=rng.normal(size=n).astype(np.float32),
        sh=rng.normal(size=(n, (degree + 1) ** 2, 3)).astype(np.float32))


class FakeBrowser:
    """A connected browser as the viewer sees it (what it uses of viser's `ClientHandle`): a camera of
    `width` x `height` pixels at `c2w` (OpenGL) with vertical `fov`, and the background images sent to it."""

    def __init__(self, c2w, fov: float, width: int = 24, height: int = 16):
        position, wxyz = browser_camera.browser_pose(c2w)
        self.client_id = 1
        self.updates = []  # the viewer's callbacks for camera updates
        self.camera = SimpleNamespace(position=position, wxyz=wxyz, fov=fov, image_width=width, image_height=height,
                                      on_update=self.updates.append)
        self.backgrounds = []  # each image sent (None: cleared)
        frustum = lambda *args, **kwargs: SimpleNamespace(on_click=lambda callback: None, visible=True)  # noqa: E731
        self.scene = SimpleNamespace(add_camera_frustum=frustum,
                                     set_background_image=lambda image, **kwargs: self.backgrounds.append(image))
        self.gui = SimpleNamespace(add_markdown=lambda content, order: SimpleNamespace(content=content))
        self.atomic = contextlib.nullcontext

    def connect(self, viewer) -> "server._Client":
        wxyz = self.camera.wxyz
        viewer._connect(self)
        self.camera.wxyz = wxyz  # the viewer set position, fov and look-at; the browser derives the rotation
        state = viewer.clients[self.client_id]
        state.moved_at -= 1.0  # still: its next frame is at full resolution
        return state

    def move(self) -> None:
        """The camera moved (and stopped): what viser reports."""
        for callback in self.updates:
            callback(self.camera)
        self.state.moved_at -= 1.0


def render_all(viewer) -> None:
    """Polls until the viewer has nothing left to render."""
    while viewer.poll(10.0):
        pass


@pytest.fixture(scope="module")
def loaded(trained_run):
    """(config, train split, renderer) of the tiny trained run, the viewer on any free port."""
    config = demo_config.get_config()
    config.exp_dir, config.viewer_port = str(trained_run), 0
    config = run_config.for_restore(config, explicit=("exp_dir", "viewer_port"))
    return config, datasets.load_split(config, "train"), rendering.load_renderer(config, log=lambda s: None)


def make_viewer(loaded, **kwargs) -> server.Viewer:
    config, train, renderer = loaded
    viewer = server.Viewer(config, train, renderer.render_fn, renderer.mesh, **kwargs)
    viewer.set_params(renderer.params, renderer.step)
    return viewer


def input_labels(viewer) -> list[str]:
    return [handle.label for handle in viewer.server.gui._gui_input_handle_from_uuid.values()]


def splats_in_scene(viewer) -> bool:
    """Whether the scene sent to every browser holds the splats' node."""
    return server.SPLATS_NODE in viewer.server.scene._handle_from_node_name


def test_without_splats_there_is_no_show_control_and_frames_render(loaded):
    viewer = make_viewer(loaded)
    try:
        assert viewer.show is None and not splats_in_scene(viewer) and not viewer.showing_splats()
        assert "Show" not in input_labels(viewer) and "Output" in input_labels(viewer)
        _, train, _ = loaded
        browser = FakeBrowser(train.camtoworlds[0], 0.7)
        browser.state = browser.connect(viewer)
        render_all(viewer)
        assert viewer.frames == 1 and browser.backgrounds[-1].shape == (16, 24, 3)
        assert browser.state.status.content.startswith("Still frame 1 complete")
    finally:
        viewer.close()


def test_training_cameras_whose_images_would_cover_the_view_are_hidden(loaded):
    """A browser 1.5 frustum sizes behind camera 0: camera 0's image would span most of its view and
    is hidden, as is every frustum `frustums_in_the_way` names; the others are shown, until the
    control hides them all."""
    viewer = make_viewer(loaded)
    try:
        _, train, _ = loaded
        size = server.FRUSTUM_SCALE * viewer.scene_size
        c2w = np.array(train.camtoworlds[0], np.float64)
        c2w[:3, 3] += 1.5 * size * c2w[:3, 2]  # backwards (OpenGL): camera 0's frustum ahead
        browser = FakeBrowser(c2w, 0.7)
        state = browser.connect(viewer)  # which moves it to the viewer's opening view
        browser.camera.position, browser.camera.wxyz = browser_camera.browser_pose(c2w)
        browser.camera.fov = 0.7
        viewer._update_frustums(state)
        shown = np.array([f.visible for f in state.frustums])
        in_the_way = browser_camera.frustums_in_the_way(train.camtoworlds, viewer.fovs, size, c2w, 0.7,
                                                        server.FRUSTUM_SHARE)
        assert not shown[0] and shown.any()
        np.testing.assert_array_equal(shown, ~in_the_way)
        viewer.show_cameras.value = False
        viewer._update_frustums(state)
        assert not any(f.visible for f in state.frustums)
    finally:
        viewer.close()


def test_the_show_control_switches_between_the_splats_and_the_nerf(loaded):
    _, train, _ = loaded
    splats = random_splats(200, np.mean(train.camtoworlds[:, :3, 3], axis=0), 0.3)
    viewer = make_viewer(loaded, splats=splats, splats_name="test splats")
    try:
        # The splats are in the scene, with a control that shows them first.
        assert "Show" in input_labels(viewer)
        assert viewer.show.value == server.SHOW_SPLATS and set(viewer.show.options) == {"Splats", "NeRF"}
        assert splats_in_scene(viewer) and viewer.splats_node.visible and viewer.showing_splats()
        assert viewer.output.disabled and viewer.max_side.disabled  # they set the NeRF's frames
        browser = FakeBrowser(train.camtoworlds[0], 0.7)
        browser.state = browser.connect(viewer)
        assert browser.state.status.content == "Showing 200 splats (test splats), drawn by the browser."
        # No NeRF frame is rendered or sent while they are shown, even when the camera moves.
        render_all(viewer)
        browser.move()
        render_all(viewer)
        assert viewer.frames == 0 and all(image is None for image in browser.backgrounds)

        # The NeRF: the splats out of the scene, the camera's frame rendered and sent.
        viewer.show.value = server.SHOW_NERF
        assert not splats_in_scene(viewer) and not viewer.showing_splats()
        assert not viewer.output.disabled and not viewer.max_side.disabled
        render_all(viewer)
        assert viewer.frames == 1 and browser.backgrounds[-1].shape == (16, 24, 3)
        assert browser.state.status.content.startswith("Still frame 1 complete")
        nerf = browser.backgrounds[-1]
        browser.move()
        render_all(viewer)
        assert viewer.frames == 2

        # Back to the splats: shown, the NeRF's image cleared, and no more frames.
        sent = len(browser.backgrounds)
        viewer.show.value = server.SHOW_SPLATS
        assert splats_in_scene(viewer) and viewer.splats_node.visible
        assert browser.backgrounds[sent:] == [None]
        assert browser.state.status.content.startswith("Showing 200 splats")
        viewer.output.value = "depth"  # an output change resends no NeRF image over the splats
        browser.move()
        render_all(viewer)
        assert viewer.frames == 2 and browser.backgrounds[sent:] == [None]

        # And the NeRF once more: its frame rendered again, the same as before for the same camera.
        viewer.output.value = "colour"
        viewer.show.value = server.SHOW_NERF
        render_all(viewer)
        assert viewer.frames == 3
        np.testing.assert_array_equal(browser.backgrounds[-1], nerf)
    finally:
        viewer.close()


def test_a_frame_rendering_when_the_splats_are_shown_is_dropped(loaded):
    _, train, _ = loaded
    viewer = make_viewer(loaded, splats=random_splats(10, np.zeros(3), 0.3), show=server.SHOW_NERF)
    try:
        assert not splats_in_scene(viewer)
        browser = FakeBrowser(train.camtoworlds[0], 0.7)
        browser.state = browser.connect(viewer)
        work = viewer._next_work()
        next(work)  # the first of the frame's chunks
        viewer.show.value = server.SHOW_SPLATS
        for _ in work:  # the rest, as a poll already under way would
            pass
        assert viewer.frames == 1 and browser.backgrounds == [None]  # rendered, never sent
        assert browser.state.status.content.startswith("Showing 10 splats")
    finally:
        viewer.close()


def test_splat_colours_are_the_constant_band_clipped():
    sh = np.zeros((3, 4, 3), np.float32)
    sh[:, 1:] = 5.0  # the view-dependent bands count for nothing
    sh[0, 0] = gaussians.rgb_to_sh_dc(np.array([0.2, 0.5, 0.9]))
    sh[1, 0], sh[2, 0] = -10.0, 10.0
    np.testing.assert_allclose(server.splat_colors(sh), [[0.2, 0.5, 0.9], [0, 0, 0], [1, 1, 1]], atol=1e-6)
    splats = random_splats(5, np.zeros(3), 1.0)
    centers, covs, rgbs, opacity = server.splat_arrays(splats)
    assert centers.shape == (5, 3) and covs.shape == (5, 3, 3) and rgbs.shape == (5, 3) and opacity.shape == (5, 1)
    np.testing.assert_allclose(covs, gaussians.covariances(splats.log_scales, splats.quats), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(opacity[:, 0], 1 / (1 + np.exp(-splats.opacity_logits)), rtol=1e-5)


def test_a_runs_splats_file_is_read_into_the_models_frame(tmp_path):
    # A capture whose world frame the loader normalised: the file is in the capture's frame.
    turn = np.array([[0, -1, 0, 0.3], [1, 0, 0, -0.2], [0, 0, 1, 0.1], [0, 0, 0, 1]])
    to_model = np.diag([0.5, 0.5, 0.5, 1.0]) @ turn
    train = SimpleNamespace(transform=to_model, applied_transform=None)
    in_model = random_splats(50, np.zeros(3), 1.0, degree=2)
    (tmp_path / "export").mkdir()
    splat_file.write_splats(tmp_path / "export" / "splats.ply",
                            splat_file.transform_splats(in_model, np.linalg.inv(to_model)))
    read = view.run_splats(tmp_path, train)
    np.testing.assert_allclose(read.means, in_model.means, atol=1e-5)
    np.testing.assert_allclose(read.log_scales, in_model.log_scales, atol=1e-5)
    np.testing.assert_allclose(gaussians.covariances(read.log_scales, read.quats),
                               gaussians.covariances(in_model.log_scales, in_model.quats), atol=1e-5)
    np.testing.assert_allclose(read.sh, in_model.sh, atol=1e-4)
    # A run without the file has no splats; an unreadable file is said and skipped.
    assert view.run_splats(tmp_path / "none", train) is None
    (tmp_path / "export" / "splats.ply").write_text("not a ply")
    said = []
    assert view.run_splats(tmp_path, train, log=said.append) is None
    assert len(said) == 1 and "splats.ply" in said[0]


def test_view_serves_a_runs_splats_first(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "export").mkdir(exist_ok=True)  # the shared run may have exported already
    splat_file.write_splats(run / "export" / "splats.ply", random_splats(300, np.zeros(3), 0.3))
    config = demo_config.get_config()
    config.exp_dir, config.viewer_port = str(run), 0
    said = []
    viewer = view.serve(config, explicit=("exp_dir", "viewer_port"), log=said.append, forever=False)
    try:
        assert viewer.showing_splats() and splats_in_scene(viewer) and viewer.splats_count == 300
        assert re.search(r"viewer: http://\S+ \(step \d+ of .*; showing its 300 splats \(export/splats.ply\)", said[-1])
    finally:
        viewer.close()
