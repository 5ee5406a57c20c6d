"""The viewer's camera-path panel: keyframes from the browser's view, a preview, and a JSON file in
exp_dir/camera_paths/ that `render.py --config.render_path=file` renders (format: `path_files.py`)."""

import pathlib
import threading
import time

import numpy as np

from mipnerf.cameras import path_files
from mipnerf.viewer import browser_camera

KEYFRAME_COLOR = (230, 120, 20)


class PathPanel:
    """The "Camera path" folder of the viewer's controls and the keyframes it edits.

    Keyframes are shared by every browser; "Add keyframe" and "Set to view" take the view of the
    browser whose button was pressed, and the preview moves that browser's camera.
    """

    def __init__(self, viewer, exp_dir):
        self.viewer, self.server = viewer, viewer.server
        self.out_dir = pathlib.Path(exp_dir) / "camera_paths"
        self.keyframes: list[path_files.Keyframe] = []
        self.lock = threading.Lock()
        self.playing = None  # (browser handle, start time) while the preview plays
        self.drawn = []  # the scene nodes of the keyframes and the curve
        gui = self.server.gui
        with gui.add_folder("Camera path", expand_by_default=False):
            add = gui.add_button("Add keyframe", hint="The current view becomes the path's last keyframe")
            self.selected = gui.add_dropdown("Keyframe", ("none",), initial_value="none")
            go = gui.add_button("Go to keyframe")
            move = gui.add_button("Set to view", hint="The selected keyframe takes the current view")
            delete = gui.add_button("Delete keyframe")
            self.seconds = gui.add_number("Duration (s)", 4.0, min=0.1, step=0.1)
            self.fps = gui.add_number("Frame rate", 30, min=1, max=240, step=1)
            self.loop = gui.add_checkbox("Loop", False)
            self.width = gui.add_number("Width", 640, min=8, max=8192, step=1)
            self.height = gui.add_number("Height", 480, min=8, max=8192, step=1)
            self.time = gui.add_slider("Preview", 0.0, 1.0, 0.01, 0.0, hint="Moves the view along the path")
            play = gui.add_button("Play preview")
            self.name = gui.add_text("File name", "path.json")
            save = gui.add_button("Save path")
            self.message = gui.add_markdown("")

        add.on_click(lambda event: self._edit(event.client, "add"))
        move.on_click(lambda event: self._edit(event.client, "move"))
        delete.on_click(lambda event: self._edit(event.client, "delete"))
        go.on_click(lambda event: self._go(event.client))
        save.on_click(lambda event: self.save())
        play.on_click(lambda event: self._play(event.client))
        self.time.on_update(lambda event: self._preview(event.client, float(self.time.value)))
        for control in (self.seconds, self.fps, self.loop):
            control.on_update(lambda event: self._redraw())

    def _view(self, handle) -> path_files.Keyframe:
        cam = handle.camera
        c2w, _ = browser_camera.browser_camera(cam.position, cam.wxyz, cam.fov, cam.image_width, cam.image_height)
        return path_files.Keyframe(np.concatenate([c2w, [[0, 0, 0, 1]]]), float(cam.fov))

    def _index(self):
        value = self.selected.value
        return None if value == "none" else int(value) - 1

    def _edit(self, handle, action: str) -> None:
        with self.lock:
            index = self._index()
            if action == "add":
                if not self.keyframes:  # the path's frames are what this browser shows
                    cam = handle.camera
                    self.width.value, self.height.value = cam.image_width, cam.image_height
                self.keyframes.append(self._view(handle))
                index = len(self.keyframes) - 1
            elif index is None:
                self.message.content = "Select a keyframe first."
                return
            elif action == "move":
                self.keyframes[index] = self._view(handle)
            else:
                del self.keyframes[index]
                index = min(index, len(self.keyframes) - 1) if self.keyframes else None
            self.selected.options = tuple(str(k + 1) for k in range(len(self.keyframes))) or ("none",)
            self.selected.value = "none" if index is None else str(index + 1)
        self.message.content = f"{len(self.keyframes)} keyframe(s)."
        self._redraw()

    def _go(self, handle) -> None:
        index = self._index()
        if index is not None:
            self.viewer.move_camera(handle, self.keyframes[index].camtoworld, self.keyframes[index].fov)

    def _frames(self):
        return path_files.interpolate(self.keyframes, float(self.seconds.value), float(self.fps.value),
                                       loop=bool(self.loop.value))

    def _redraw(self) -> None:
        """Draws the keyframes as frustums and the path through them as a curve."""
        with self.lock:
            keyframes = list(self.keyframes)
        for handle in self.drawn:
            handle.remove()
        self.drawn = []
        size = 0.1 * self.viewer.scene_size
        aspect = float(self.width.value) / float(self.height.value)
        for k, key in enumerate(keyframes):
            position, wxyz = browser_camera.browser_pose(key.camtoworld)
            frustum = self.server.scene.add_camera_frustum(f"/camera_path/keyframe_{k}", fov=key.fov, aspect=aspect,
                                                           scale=size, wxyz=wxyz, position=position, color=KEYFRAME_COLOR,
                                                           thickness=2.0, thickness_units="screen")
            frustum.on_click(lambda event, k=k: self._select(event.client, k))
            self.drawn.append(frustum)
        if len(keyframes) >= 2:
            c2ws, _ = self._frames()
            self.drawn.append(self.server.scene.add_spline_catmull_rom(
                "/camera_path/curve", c2ws[:, :3, 3], color=KEYFRAME_COLOR, thickness=0.01 * self.viewer.scene_size))

    def _select(self, handle, k: int) -> None:
        self.selected.value = str(k + 1)
        self._go(handle)

    def _preview(self, handle, t: float) -> None:
        if not self.keyframes:
            return
        c2ws, fovs = self._frames()
        n = min(int(round(t * (len(c2ws) - 1))), len(c2ws) - 1)
        self.viewer.move_camera(handle, c2ws[n], fovs[n])

    def _play(self, handle) -> None:
        if self.keyframes:
            self.playing = (handle, time.monotonic())

    def play(self) -> None:
        """Moves the playing browser's camera to the path's frame for the time elapsed (called by `Viewer.poll`)."""
        if self.playing is None:
            return
        handle, start = self.playing
        t = (time.monotonic() - start) / float(self.seconds.value)
        if t >= 1.0:
            self.playing, t = None, 1.0
        self._preview(handle, t)

    def save(self) -> pathlib.Path:
        """Writes the path to exp_dir/camera_paths/NAME and says how to render it."""
        name = pathlib.Path(self.name.value.strip() or "path.json").name
        if not name.endswith(".json"):
            name += ".json"
        if not self.keyframes:
            self.message.content = "Add a keyframe first."
            return None
        path = path_files.save(self.out_dir / name, self.keyframes, float(self.seconds.value), float(self.fps.value),
                                int(self.width.value), int(self.height.value), loop=bool(self.loop.value))
        self.message.content = (f"Saved `{path}`. Render it with `python render.py --config.exp_dir="
                                f"{self.viewer.config.exp_dir} --config.render_path=file --config.render_path_file={path}`")
        return path
