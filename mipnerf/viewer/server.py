"""The web viewer behind view.py and `train.py --config.viewer=True`: the scene rendered from each
browser's camera, the training cameras, and a panel for camera paths (`path_panel.py`).

It is served by viser, whose page (three.js, shipped in its pip package) sends the browser's
camera and shows the image we send back as its background. All rendering happens in the thread
that calls `Viewer.poll`, between training steps when training: viser's own threads only record
what the browser asked for. A frame is rendered a chunk of pixels at a time with the compiled
render function that eval.py and render.py use, so a new camera pose abandons a frame between
chunks. Rendering is progressive, as in nerfstudio: while the camera moves, frames are sized
from the measured rays per second for about `MOVING_FPS` frames a second; once it has been still
for `SETTLE_S`, the full resolution (the canvas, capped by the "Max resolution" control).

Each browser has a status line of its own, sent after each image: for a still frame it reads
"Still frame N complete", with the camera the frame was rendered from and whether the training
cameras are drawn over it, so a page (or a test driving one) knows the exact view it shows.

Given 3D Gaussian splats (view.py passes a run's exp_dir/export/splats.ply), the viewer shows them
with viser's Gaussian-splat renderer: the browser sorts and blends them itself, at its own frame
rate, with each splat's view-independent colour (its constant SH band). A "Show" control switches
between the splats and the NeRF render of the same camera: with the splats shown no NeRF frame is
rendered or sent (clicking a training camera still scores the NeRF); with the NeRF shown the
splats are taken out of the scene (sent again when shown again: a hidden splat node still costs
the browser most of its frame rate) and frames render as above.
"""

import contextlib
import io
import socket
import threading
import time
from collections.abc import Generator
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import viser

from mipnerf import datasets, metrics
from mipnerf.cameras import camera, orbits
from mipnerf.datasets.image_io import downsample, downsample_mask
from mipnerf.errors import ConfigError
from mipnerf.render import gaussians, rendering, video
from mipnerf.viewer import browser_camera, path_panel

REFRESH_S = 3.0  # while training, the view is rendered again with the newest parameters this often
SETTLE_S = 0.2  # a camera still this long gets its full-resolution frame
MOVING_FPS = 10.0  # frames while the camera moves are sized for this rate
FRUSTUM_SCALE = 0.08  # the training cameras' frustums, in units of the cameras' median distance to the centre
FRUSTUM_SHARE = 0.25  # a training camera whose image would span more of the view's height is hidden
THUMBNAIL_PIXELS = 96  # the training images on the frustums, longest side at most
SCORE_PIXELS = 256  # a clicked training camera is scored at its image downsampled to at most this
OUTPUTS = ("colour", "depth", "opacity")
SHOW_NERF, SHOW_SPLATS = "NeRF", "Splats"  # the "Show" control's options, present only with splats
SPLATS_NODE = "/splats"


def start_server(host: str, port: int) -> viser.ViserServer:
    """A viser server on `host`:`port` (0: any free port); raises `ConfigError` when the port is taken
    (viser itself would move to the next free one, and the printed address would be wrong)."""
    if port:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError as e:
                raise ConfigError(f"config.viewer_port={port}: cannot listen on {host}:{port} ({e.strerror}); "
                                  f"choose another port with --config.viewer_port") from None
    with contextlib.redirect_stdout(io.StringIO()):  # viser prints a banner with its own address
        server = viser.ViserServer(host=host, port=port, verbose=False)
    if port and server.get_port() != port:
        server.stop()
        raise ConfigError(f"config.viewer_port={port}: port {port} is in use; choose another with --config.viewer_port")
    return server


def url(host: str, port: int) -> str:
    """The address a browser on this machine opens."""
    return f"http://{'localhost' if host in ('0.0.0.0', '127.0.0.1', '') else host}:{port}"


def frame_size(width: int, height: int, max_pixels: float, max_side: int) -> tuple[int, int]:
    """The largest (width, height) of the canvas's aspect with at most `max_pixels` pixels and sides
    at most `max_side`, and at least 8 pixels on the shorter side (or the canvas, if smaller)."""
    scale = min(1.0, max_side / max(width, height), np.sqrt(max_pixels / (width * height)))
    scale = max(scale, min(1.0, 8.0 / min(width, height)))
    return max(1, round(width * scale)), max(1, round(height * scale))


def output_image(image: rendering.Image, output: str, disparity: bool) -> np.ndarray:
    """[H, W, 3] uint8 of one output of a rendered view: colour, depth (render.py's colour map) or opacity."""
    if output == "depth":
        return video.depth_image(image.depth, image.acc, disparity=disparity)
    if output == "opacity":
        return video.to_uint8(np.repeat(image.acc[..., None], 3, axis=-1))
    return video.to_uint8(image.rgb)


def pose_text(camtoworld: np.ndarray, fov: float) -> str:
    """A camera as a status line names it: position, view and up directions, vertical field of view."""
    def vector(v) -> str:
        return "(" + ", ".join(f"{round(x, 4) + 0.0:.4f}" for x in v) + ")"  # + 0.0: no "-0.0000"

    c2w = np.asarray(camtoworld, np.float64)
    return (f"Camera at {vector(c2w[:3, 3])} looking {vector(-c2w[:3, 2])} up {vector(c2w[:3, 1])}, "
            f"fov {np.degrees(fov):.3f}°")


def splat_colors(sh) -> np.ndarray:
    """[N, 3] float32 colours in [0, 1] of splats' SH coefficients [N, K, 3]: their constant band
    alone, max(0, SH_C0 * dc + 1/2) clipped to 1 (what the splats show from every direction; the
    higher bands, view-dependent, are left out)."""
    dc = np.asarray(sh, np.float32)[:, 0]
    return np.clip(gaussians.SH_C0 * dc + 0.5, 0.0, 1.0)


def splat_arrays(splats: gaussians.Splats) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What viser's `add_gaussian_splats` takes for `splats`: centres [N, 3], covariances [N, 3, 3],
    colours [N, 3] in [0, 1] (`splat_colors`) and opacities [N, 1], all float32 numpy."""
    centers = np.asarray(splats.means, np.float32)
    covs = np.asarray(gaussians.covariances(jnp.asarray(splats.log_scales, jnp.float32),
                                            jnp.asarray(splats.quats, jnp.float32)), np.float32)
    opacity = np.asarray(gaussians.opacities(jnp.asarray(splats.opacity_logits, jnp.float32)), np.float32)
    return centers, covs, splat_colors(splats.sh), opacity.reshape(-1, 1)


class FrameKey(NamedTuple):
    """What a frame is rendered for: the versions of the browser's camera, the parameters and the
    settings, and whether the camera is moving (a frame sized for `MOVING_FPS`) or still."""
    camera: int
    params: int
    settings: int
    moving: bool


class Job(NamedTuple):
    """A frame being rendered: its key and the generator that renders it a chunk per iteration."""
    key: FrameKey
    chunks: Generator


class _Client:
    """What one browser tab shows and asked for; viser's threads only bump `version` and `moved_at`."""

    def __init__(self, handle: viser.ClientHandle, status_order: float):
        self.handle = handle
        self.report = "Waiting for the model..."  # what its status line says of the frame on screen
        self.status = handle.gui.add_markdown(self.report, order=status_order)  # a status line of its own
        self.version = 0  # counts camera updates
        self.moved_at = time.monotonic()
        self.shown: Optional[FrameKey] = None  # the frame on screen
        self.image: Optional[rendering.Image] = None  # that frame, for switching outputs without rendering
        self.job: Optional[Job] = None  # the frame being rendered
        self.frustums = []  # its training cameras' scene nodes


class Viewer:
    """Serves the page; `set_params` gives it a model to show, `poll` renders what browsers wait for.

    Args:
      config: the run's config (near, far, render_chunk, viewer_host, viewer_port, exp_dir, ...).
      train: the training split: cameras drawn as frustums with their images as thumbnails.
      render_fn: `rendering.make_render_fn(config, model)`; mesh: the device mesh.
      training: show the "Training share" control (the viewer's share of time between steps).
      splats: 3D Gaussians in the model's frame, drawn by the browser; with them, the "Show"
        control switches between them and the NeRF render. splats_name: what the status line calls them.
      show: what is shown first with splats, `SHOW_SPLATS` or `SHOW_NERF`.
    """

    def __init__(self, config, train: datasets.Split, render_fn, mesh, training: bool = False,
                 splats: Optional[gaussians.Splats] = None, splats_name: str = "splats", show: str = SHOW_SPLATS):
        self.config, self.render_fn, self.mesh, self.training = config, render_fn, mesh, training
        self.disparity = config.ray_spacing != "linear"
        self.server = start_server(config.viewer_host, config.viewer_port)
        self.url = url(config.viewer_host, self.server.get_port())
        self.lock = threading.Lock()
        self.status_lock = threading.Lock()  # for writing a status line from the render thread or viser's
        self.clients: dict[int, _Client] = {}
        self.params, self.step, self.params_version = None, None, 0
        self.settings_version = 0
        self.rays_per_s: Optional[float] = None  # measured while rendering for the browsers
        self.compiled = set()  # (chunk, lens) of the render calls compiled so far
        self.frames = 0  # frames sent to browsers
        self.seconds = 0.0  # spent rendering between training steps
        self.refreshed = -np.inf
        self.last_poll_end = time.perf_counter()
        self.score_request = None  # (clicked training camera, its scoring generator once started)
        self._add_training_cameras(train)
        self.splats, self.splats_count, self.splats_text = None, 0, ""  # the arrays viser's splat node takes
        self.splats_node = None  # that node, while shown
        if splats is not None:
            self.splats = splat_arrays(splats)
            self.splats_count = len(self.splats[0])
            self.splats_text = f"Showing {self.splats_count:,} splats ({splats_name}), drawn by the browser."
        self._add_controls(training, show)
        self.path = path_panel.PathPanel(self, config.exp_dir)
        self.server.on_client_connect(self._connect)
        self.server.on_client_disconnect(self._disconnect)

    # --- what viser's threads call -------------------------------------------------------------

    def _connect(self, handle: viser.ClientHandle) -> None:
        state = _Client(handle, self.status_order)
        self._add_frustums(state)
        with self.lock:
            self.clients[handle.client_id] = state
        with self.status_lock:
            state.status.content = self._status_text(state)
        self.move_camera(handle, self.start_pose, self.start_fov)
        self._update_frustums(state)

        @handle.camera.on_update
        def _(cam) -> None:
            state.version += 1
            state.moved_at = time.monotonic()
            self._update_frustums(state)

    def _states(self) -> list["_Client"]:
        """The connected browsers' states, copied under the lock (viser's threads add and remove them)."""
        with self.lock:
            return list(self.clients.values())

    def _disconnect(self, handle: viser.ClientHandle) -> None:
        with self.lock:
            self.clients.pop(handle.client_id, None)

    def move_camera(self, handle: viser.ClientHandle, camtoworld: np.ndarray, fov: float) -> None:
        """Moves a browser's camera to a [3 or 4, 4] camera-to-world (OpenGL) with vertical `fov`;
        the orbit centre is put where the view direction passes closest to the scene centre."""
        c2w = np.asarray(camtoworld, np.float64)
        forward, up = -c2w[:3, 2], c2w[:3, 1]
        distance = max(float((self.center - c2w[:3, 3]) @ forward), 1e-3 * self.scene_size)
        with handle.atomic():
            handle.camera.fov = float(fov)
            handle.camera.position = c2w[:3, 3]
            handle.camera.up_direction = up
            handle.camera.look_at = c2w[:3, 3] + distance * forward

    # --- scene and controls ----------------------------------------------------------------------

    def _add_training_cameras(self, train: datasets.Split) -> None:
        """Frustums with thumbnails; keeps the cameras and, for scoring, the images downsampled (not the split)."""
        c2ws = np.asarray(train.camtoworlds, np.float64)
        self.camtoworlds = c2ws
        self.orbit = orbit = orbits.camera_orbit(c2ws)
        self.center = orbit.center
        # The training cameras' median distance from the centre: the scale of frustums and ray bounds.
        self.scene_size = float(np.median(orbit.distances)) or 1.0
        self.fovs = [browser_camera.vertical_fov(float(fy), train.height) for fy in np.asarray(train.intrinsics.fy)]
        self.start_pose, self.start_fov = c2ws[0], self.fovs[0]
        thumb = -(-max(train.height, train.width) // THUMBNAIL_PIXELS)
        score = -(-max(train.height, train.width) // SCORE_PIXELS)
        self.score_images = [downsample(image, score, path, crop=True) for image, path in zip(train.images, train.files)]
        masks = [train.mask(i) for i in range(len(train.images))]  # scored over the kept pixels
        self.score_masks = [None if mask is None else downsample_mask(mask, score) for mask in masks]
        self.score_intrinsics = train.intrinsics.scaled(score)
        self.thumbnails = [downsample(image, thumb, path, crop=True) for image, path in zip(train.images, train.files)]
        self.aspect = train.width / train.height

    def _add_frustums(self, state: "_Client") -> None:
        """Draws the training cameras for one browser, each clickable. Every browser has its own, so
        that the one its camera sits in can be hidden: its image would fill the view and take every click."""
        for i, c2w in enumerate(self.camtoworlds):
            position, wxyz = browser_camera.browser_pose(c2w)
            frustum = state.handle.scene.add_camera_frustum(
                f"/training_cameras/{i}", fov=self.fovs[i], aspect=self.aspect, scale=FRUSTUM_SCALE * self.scene_size,
                image=self.thumbnails[i], format="jpeg", wxyz=wxyz, position=position, color=(40, 90, 200),
                thickness=1.5, thickness_units="screen",
                visible=self.show_cameras.value)
            frustum.on_click(lambda event, i=i: self._clicked_training_camera(event.client, i))
            state.frustums.append(frustum)

    def _update_frustums(self, state: "_Client") -> None:
        """Shows a browser's training cameras (if asked to), except those whose images would cover
        more than `FRUSTUM_SHARE` of its view (the one it sits in among them): they would hide the
        scene and take every click."""
        camera = state.handle.camera
        c2w, _ = browser_camera.browser_camera(camera.position, camera.wxyz, camera.fov, 1, 1)
        near = browser_camera.frustums_in_the_way(self.camtoworlds, self.fovs, FRUSTUM_SCALE * self.scene_size, c2w,
                                                  camera.fov, FRUSTUM_SHARE)
        for frustum, inside in zip(state.frustums, near):
            visible = bool(self.show_cameras.value and not inside)
            if frustum.visible != visible:
                frustum.visible = visible

    def _clicked_training_camera(self, handle: viser.ClientHandle, index: int) -> None:
        self.move_camera(handle, self.camtoworlds[index], self.fovs[index])
        self.score_request = (index, None)
        self.score_text.content = f"Training camera {index}: scoring..."

    def showing_splats(self) -> bool:
        """Whether the browsers show the splats (and no NeRF frame is rendered)."""
        return self.show is not None and self.show.value == SHOW_SPLATS

    def _add_controls(self, training: bool, show: str) -> None:
        gui = self.server.gui
        gui.configure_theme(show_logo=False, control_width="medium")
        gui.main_panel.dock_right()  # beside the view, not over it
        self.show = None
        if self.splats is not None:
            if show not in (SHOW_NERF, SHOW_SPLATS):
                raise ValueError(f"show={show!r}: expected {SHOW_SPLATS!r} or {SHOW_NERF!r}")
            self.show = gui.add_dropdown("Show", (SHOW_SPLATS, SHOW_NERF), initial_value=show,
                                         hint="The splats, drawn by the browser at its frame rate, or the NeRF")
        self.output = gui.add_dropdown("Output", OUTPUTS, initial_value=OUTPUTS[0])
        # Each browser's status line goes above the controls.
        self.status_order = (self.output if self.show is None else self.show).order - 0.5
        self.max_side = gui.add_slider("Max resolution", 64, 2048, 32, 512,
                                       hint="The longest side of the still frame, in pixels")
        self.show_cameras = gui.add_checkbox("Training cameras", True)
        self.train_share = gui.add_slider("Training share", 0.1, 0.9, 0.05, 0.5, visible=training,
                                          hint="The share of time between steps that training keeps while a browser waits")
        self.score_text = gui.add_markdown("Click a training camera to fly to it and score the render against its image.")

        @self.output.on_update
        def _(event) -> None:
            for state in self._states():
                self._send(state)

        @self.max_side.on_update
        def _(event) -> None:
            self.settings_version += 1

        @self.show_cameras.on_update
        def _(event) -> None:
            for state in self._states():
                self._update_frustums(state)
                with self.status_lock:  # after the frustums: a page that reads it has them drawn
                    state.status.content = self._status_text(state)

        if self.show is not None:
            self._show_changed()
            self.show.on_update(lambda event: self._show_changed())

    def _show_changed(self) -> None:
        """Shows the splats or the NeRF, as the "Show" control says: with the splats, every browser's
        NeRF frame (and any being rendered) is dropped; with the NeRF, the splats are taken out of
        the scene and every browser's frame is rendered anew."""
        with self.status_lock:
            splats = self.showing_splats()
            if splats and self.splats_node is None:
                self.splats_node = self.server.scene.add_gaussian_splats(SPLATS_NODE, *self.splats)
            elif not splats and self.splats_node is not None:
                self.splats_node.remove()
                self.splats_node = None
            self.output.disabled = self.max_side.disabled = splats  # they set the NeRF's frames
            self.settings_version += 1
            for state in self._states():
                state.job, state.shown, state.image = None, None, None
                state.report = "Rendering the NeRF..."
                if splats:
                    state.handle.scene.set_background_image(None)
                state.status.content = self._status_text(state)

    # --- rendering ----------------------------------------------------------------------------

    def set_params(self, params, step: int) -> None:
        """Shows the model with `params` (trained to `step`) from now on; the browsers' views are rendered again."""
        self.params, self.step = params, int(step)
        self.params_version += 1

    def training_step(self, params, step: int) -> None:
        """Called after each training step: without a browser, returns at once. With one, takes a
        copy of `params` every `REFRESH_S` seconds (training donates its buffers) and renders for
        as long as the "Training share" control leaves to the viewer."""
        if not self.clients:
            self.last_poll_end = time.perf_counter()
            return
        # Wait for the step in flight: its time is training's, and renders queued behind it would
        # count it as theirs.
        jax.block_until_ready(params)
        now = time.perf_counter()
        train_time = now - self.last_poll_end
        if now - self.refreshed >= REFRESH_S:
            self.set_params(jax.tree.map(jnp.copy, params), step)
            self.refreshed = now
        share = float(self.train_share.value)
        self.poll(train_time * (1 - share) / share)
        self.last_poll_end = time.perf_counter()
        self.seconds += self.last_poll_end - now

    def poll(self, budget_s: float) -> bool:
        """Renders chunks for the browsers for about `budget_s` seconds (at least one chunk when any
        is waiting). Returns whether work is left."""
        deadline = time.perf_counter() + budget_s
        self.path.play()
        while True:
            work = self._next_work()
            if work is None:
                return False
            try:
                next(work)
            except StopIteration:
                pass
            if time.perf_counter() >= deadline:
                return True

    def _target(self, state: _Client) -> Optional[FrameKey]:
        """The key of the frame a browser should see next, or None when it sees it."""
        moving = time.monotonic() - state.moved_at < SETTLE_S
        key = FrameKey(state.version, self.params_version, self.settings_version, moving)
        return None if state.shown == key else key

    def _next_work(self):
        """The generator to advance by one chunk: a browser's frame, else a training camera's score."""
        if self.params is None:
            return None
        states = self._states()
        for state in [] if self.showing_splats() else states:  # the browser draws the splats itself
            target = self._target(state)
            if target is None:
                continue
            job = state.job
            # A moving frame is small and always finished; a still frame is dropped when the camera
            # or the settings change, not when only the parameters do.
            same_view = job is not None and (job.key.camera, job.key.settings) == (target.camera, target.settings)
            if job is None or not (job.key.moving or same_view):
                job = state.job = Job(target, self._frame(state, target))
            return job.chunks
        if self.score_request is not None and states:
            index, gen = self.score_request
            if gen is None:
                gen = self._score(index)
                self.score_request = (index, gen)
            return gen
        return None

    def _render(self, cameras: camera.Cameras, chunk: int):
        """Renders one camera a chunk per iteration (a generator); its value is the `Image`."""
        outs, elapsed, timed = [], 0.0, 0
        lens = camera.Lens.of(cameras.intrinsics)
        chunks = rendering.image_chunks(self.render_fn, self.params, cameras, lens, chunk, self.mesh)
        while True:
            tic = time.perf_counter()  # from the dispatch, which may run the call itself
            out = next(chunks, None)
            if out is None:
                break
            jax.block_until_ready(out)
            if (chunk, lens) in self.compiled:  # the rate leaves out the call that compiled
                elapsed, timed = elapsed + time.perf_counter() - tic, timed + chunk
            self.compiled.add((chunk, lens))
            outs.append(out)
            yield
        if timed:
            rate = timed / max(elapsed, 1e-6)
            self.rays_per_s = rate if self.rays_per_s is None else 0.7 * self.rays_per_s + 0.3 * rate
        return rendering.join_chunks(outs, int(cameras.height), int(cameras.width))

    def _frame(self, state: _Client, key: FrameKey):
        """Renders a browser's frame for `key` a chunk per iteration (a generator), then shows it."""
        cam = state.handle.camera
        max_pixels = (self.rays_per_s or 4096 * MOVING_FPS) / MOVING_FPS if key.moving else np.inf
        width, height = frame_size(cam.image_width, cam.image_height, max_pixels, int(self.max_side.value))
        fov = float(cam.fov)
        c2w, intrinsics = browser_camera.browser_camera(cam.position, cam.wxyz, fov, width, height)
        cameras = jax.tree.map(lambda x: x[0], camera.Cameras.of(c2w[None], intrinsics, width, height,
                                                                *self.ray_bounds(c2w[:3, 3])))
        # Small chunks for moving frames, and between training steps, where a chunk must fit the time left.
        small = key.moving or self.training
        chunk = max(self.mesh.size, self.config.render_chunk // 8) if small else self.config.render_chunk
        tic = time.perf_counter()
        image = yield from self._render(cameras, chunk)
        self.frames += 1
        timing = f"{width}×{height} in {time.perf_counter() - tic:.2f} s, {self.rays_per_s or 0:,.0f} rays/s"
        if key.moving:
            report = f"Frame {self.frames}: step {self.step}, moving {timing}"
        else:
            report = f"Still frame {self.frames} complete: step {self.step}, {timing}.\n\n{pose_text(c2w, fov)}"
        with self.status_lock:  # the status line goes to the browser after the image it reports
            if state.job is None or state.job.key != key:
                return  # the splats were shown while it rendered (`_show_changed`): dropped
            state.image, state.shown, state.job, state.report = image, key, None, report
            self._send(state)
            state.status.content = self._status_text(state)

    def _status_text(self, state: _Client) -> str:
        """A browser's status line: its frame on screen, and for a still frame whether the training
        cameras are drawn over it (written again when that changes); with the splats shown, says so."""
        if self.showing_splats():
            return self.splats_text
        if state.shown is None or state.shown.moving:
            return state.report
        return f"{state.report}; training cameras {'shown' if self.show_cameras.value else 'hidden'}."

    def ray_bounds(self, position) -> tuple[float, float]:
        """`near` and `far` of the rays of a camera at `position`: render.py's rule (`rendering.depth_offsets`)."""
        offsets = rendering.depth_offsets(np.asarray(position)[None], self.orbit, self.config)
        return rendering.ray_bounds(self.config, 0.0 if offsets is None else float(offsets[0]))

    def _score(self, index: int):
        """Renders training camera `index` at the size of its downsampled image and shows the PSNR."""
        image = self.score_images[index]
        height, width = image.shape[:2]
        cameras = camera.Cameras.of(self.camtoworlds[index][None], self.score_intrinsics.take([index]), width, height,
                                    self.config.near, self.config.far)
        step = self.step
        rendered = yield from self._render(jax.tree.map(lambda x: x[0], cameras), self.config.render_chunk)
        psnr = metrics.psnr(rendered.rgb, image.astype(np.float32) / 255, self.score_masks[index])
        self.score_text.content = (f"Training camera {index}: PSNR **{psnr:.2f} dB** against its image "
                                   f"({width}×{height}), step {step}")
        if self.score_request is not None and self.score_request[0] == index:
            self.score_request = None

    def _send(self, state: _Client) -> None:
        if state.image is None or self.showing_splats():
            return
        moving = state.shown is not None and state.shown.moving
        state.handle.scene.set_background_image(output_image(state.image, self.output.value, self.disparity),
                                                format="jpeg" if moving else "png", jpeg_quality=90)

    def close(self) -> None:
        self.server.stop()
