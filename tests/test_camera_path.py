"""Camera path files: the path through keyframes, the JSON file (ours and nerfstudio's), render_path=file."""

import json
import math

import imageio.v3 as iio
import numpy as np
import pytest

from helpers import run_config, tiny_config
from mipnerf import datasets, metrics
from mipnerf.cameras import camera, orbits, path_files
from mipnerf.cameras.path_files import Keyframe
from mipnerf.commands import render
from mipnerf.commands.config_checks import check_config
from mipnerf.errors import ConfigError
from mipnerf.render import rendering, video


def ring_keyframes(count: int, radius: float = 4.0) -> list:
    """`count` cameras on a tilted ring about the origin, looking at it, with fields of view 30 to 60 degrees."""
    angles = 2 * np.pi * np.arange(count) / count
    eyes = np.stack([radius * np.cos(angles), radius * np.sin(angles), 1.0 + 0.5 * np.sin(angles)], axis=-1)
    fovs = np.radians(np.linspace(30.0, 60.0, count))
    return [Keyframe(orbits.look_at(eye), float(fov)) for eye, fov in zip(eyes, fovs)]


def assert_rigid(poses):
    rotations = poses[:, :3, :3]
    np.testing.assert_allclose(np.swapaxes(rotations, 1, 2) @ rotations, np.broadcast_to(np.eye(3), rotations.shape),
                               atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-9)
    np.testing.assert_array_equal(poses[:, 3], np.broadcast_to([0.0, 0.0, 0.0, 1.0], (len(poses), 4)))


def test_the_path_passes_through_each_keyframe_at_its_time_and_stays_rigid():
    keyframes = ring_keyframes(3)[:3]
    keyframes[1] = keyframes[1]._replace(camtoworld=keyframes[1].camtoworld @ np.diag([1.0, -1.0, -1.0, 1.0]))  # a turn
    poses, fovs = path_files.interpolate(keyframes, seconds=1.0, fps=9)
    assert poses.shape == (9, 4, 4) and fovs.shape == (9,)
    for frame, key in zip([0, 4, 8], keyframes):  # keyframes at times 0, 1/2, 1 of frames i / 8
        np.testing.assert_allclose(poses[frame], key.camtoworld, atol=1e-9)
        np.testing.assert_allclose(fovs[frame], key.fov, atol=1e-12)
    assert_rigid(poses)
    # Between keyframes the frames move on: no frame repeats its neighbour.
    assert np.min(np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=-1)) > 0.1
    assert np.all((fovs > keyframes[0].fov - 1e-9) & (fovs < keyframes[2].fov + 1e-9))


def test_two_keyframes_and_the_frame_count():
    keyframes = ring_keyframes(4)[:2]
    poses, fovs = path_files.interpolate(keyframes, seconds=0.5, fps=10)
    assert len(poses) == len(fovs) == 5
    np.testing.assert_allclose(poses[[0, -1]], [k.camtoworld for k in keyframes], atol=1e-9)
    assert_rigid(poses)
    assert len(path_files.interpolate(keyframes, seconds=0.01, fps=10)[0]) == 1  # never fewer than one frame
    assert len(path_files.interpolate(keyframes, seconds=2.0, fps=29.97)[0]) == 60


def test_one_keyframe_holds_still_and_none_is_an_error():
    key = ring_keyframes(3)[1]
    poses, fovs = path_files.interpolate([key], seconds=2.0, fps=5)
    assert poses.shape == (10, 4, 4)
    np.testing.assert_array_equal(poses, np.broadcast_to(key.camtoworld, poses.shape))
    np.testing.assert_array_equal(fovs, key.fov)
    with pytest.raises(ValueError, match="at least one keyframe"):
        path_files.interpolate([], seconds=1.0, fps=10)


def test_a_loop_closes_smoothly_back_to_the_first_keyframe():
    keyframes = ring_keyframes(4)
    poses, fovs = path_files.interpolate(keyframes, seconds=2.0, fps=16, loop=True)
    assert len(poses) == 32
    for frame, key in zip([0, 8, 16, 24], keyframes):  # keyframes at times k / 4 of frames i / 32
        np.testing.assert_allclose(poses[frame], key.camtoworld, atol=1e-9)
        np.testing.assert_allclose(fovs[frame], key.fov, atol=1e-12)
    assert_rigid(poses)
    # The step from the last frame back to the first is like the others: no jump in position, speed,
    # turn or field of view, and no kink (second differences no larger than elsewhere).
    def closes_smoothly(values):  # [F, ...] per-frame values, the path wrapped around
        steps = np.diff(np.concatenate([values, values[:1]]), axis=0)
        kinks = np.linalg.norm(np.diff(np.concatenate([steps, steps[:1]]), axis=0).reshape(len(values), -1), axis=-1)
        sizes = np.linalg.norm(steps.reshape(len(values), -1), axis=-1)
        assert sizes[-1] <= 1.1 * np.max(sizes[:-1]) and kinks[-1] <= 1.2 * np.max(kinks[:-1])
        assert kinks[-2] <= 1.2 * np.max(kinks[:-2])

    closes_smoothly(poses[:, :3, 3])
    closes_smoothly(poses[:, :3, :3])
    closes_smoothly(fovs)
    # Without the loop, the path ends at the last keyframe, a quarter turn away.
    open_poses, _ = path_files.interpolate(keyframes, seconds=2.0, fps=16)
    np.testing.assert_allclose(open_poses[-1], keyframes[-1].camtoworld, atol=1e-9)


def test_save_and_load_round_trip(tmp_path):
    keyframes = ring_keyframes(3)
    path = path_files.save(tmp_path / "paths" / "ring.json", keyframes, seconds=1.5, fps=12, width=40, height=30)
    assert path == tmp_path / "paths" / "ring.json"
    poses, fovs = path_files.interpolate(keyframes, seconds=1.5, fps=12)
    loaded = path_files.load(path)
    np.testing.assert_allclose(loaded.camtoworlds, poses, atol=1e-6)
    np.testing.assert_allclose(loaded.fovs, fovs, atol=1e-9)
    assert (loaded.width, loaded.height, loaded.fps) == (40, 30, 12.0)
    assert len(loaded.keyframes) == 3
    for got, key in zip(loaded.keyframes, keyframes):
        np.testing.assert_allclose(got.camtoworld, key.camtoworld, atol=1e-6)
        assert got.fov == pytest.approx(key.fov)
    # The file as nerfstudio reads it: row-major matrices, vertical fov in degrees, the aspect.
    data = json.loads(path.read_text())
    assert data["camera_type"] == "perspective" and data["is_cycle"] is False and data["seconds"] == 1.5
    frame = data["camera_path"][1]
    np.testing.assert_allclose(np.reshape(frame["camera_to_world"], (4, 4)), poses[1], atol=1e-12)
    assert frame["fov"] == pytest.approx(math.degrees(fovs[1])) and frame["aspect"] == pytest.approx(40 / 30)
    assert data["keyframes"][2]["fov"] == pytest.approx(math.degrees(keyframes[2].fov))
    # A loop is recorded as nerfstudio's is_cycle.
    looped = path_files.save(tmp_path / "loop.json", keyframes, seconds=1.0, fps=8, width=4, height=4, loop=True)
    assert json.loads(looped.read_text())["is_cycle"] is True
    np.testing.assert_allclose(path_files.load(looped).camtoworlds,
                               path_files.interpolate(keyframes, 1.0, 8, loop=True)[0], atol=1e-6)


def nerfstudio_file(poses, fovs_degrees, width=640, height=480) -> dict:
    """A path_files.json as nerfstudio's viewer writes it, with its own keyframe dicts."""
    keyframe = {"matrix": [float(x) for x in np.eye(4).reshape(-1)], "fov": 50.0, "aspect": width / height,
                "override_transition_enabled": False, "override_transition_sec": None}
    return {
        "default_fov": 50.0, "default_transition_sec": 2.0, "keyframes": [keyframe, keyframe],
        "camera_type": "perspective", "render_height": height, "render_width": width, "fps": 24, "seconds": 2.0,
        "is_cycle": False, "smoothness_value": 0.5,
        "camera_path": [{"camera_to_world": [float(x) for x in c2w.reshape(-1)], "fov": fov, "aspect": width / height}
                        for c2w, fov in zip(poses, fovs_degrees)],
    }


def test_a_nerfstudio_camera_path_loads(tmp_path):
    poses = np.stack([k.camtoworld for k in ring_keyframes(5)])
    path = tmp_path / "path_files.json"
    path.write_text(json.dumps(nerfstudio_file(poses, [50.0, 52.5, 55.0, 57.5, 60.0])))
    loaded = path_files.load(path)
    np.testing.assert_allclose(loaded.camtoworlds, poses, atol=1e-12)
    np.testing.assert_allclose(loaded.fovs, np.radians([50.0, 52.5, 55.0, 57.5, 60.0]))
    assert (loaded.width, loaded.height, loaded.fps) == (640, 480, 24.0)
    assert loaded.keyframes == []  # nerfstudio's keyframes ("matrix") are in its viewer's frame, not read
    # Rendered as nerfstudio renders it: focal length 0.5 H / tan(fov / 2) in both axes, centred.
    config = tiny_config(tmp_path, tmp_path, render_factor=2)
    views, intrinsics, height, width, fps = render.file_views(path, config)
    assert (height, width, fps) == (240, 320, 24.0)
    np.testing.assert_allclose(intrinsics.fy, 120 / np.tan(np.radians([25.0, 26.25, 27.5, 28.75, 30.0])))
    np.testing.assert_array_equal(intrinsics.fx, intrinsics.fy)
    np.testing.assert_array_equal(intrinsics.cx, 160.0)
    np.testing.assert_array_equal(intrinsics.cy, 120.0)


def _good() -> dict:
    return nerfstudio_file(np.stack([k.camtoworld for k in ring_keyframes(3)]), [40.0, 40.0, 40.0], 64, 48)


def _set(data, keys, value):
    *parents, last = keys
    for key in parents:
        data = data[key]
    if value is _DELETE:
        del data[last]
    else:
        data[last] = value


_DELETE = object()
_SCALED = [float(x) for x in np.diag([2.0, 2.0, 2.0, 1.0]).reshape(-1)]
_COLUMN_MAJOR = [float(x) for x in (orbits.look_at(np.array([0.0, -4.0, 1.0])).T).reshape(-1)]


@pytest.mark.parametrize("keys,value,needle", [
    (("camera_path",), _DELETE, "camera_path is None; expected a non-empty list"),
    (("camera_path",), [], "camera_path is []; expected a non-empty list"),
    (("camera_path", 2, "camera_to_world"), _DELETE, "camera_path[2].camera_to_world is None; expected 16 numbers"),
    (("camera_path", 1, "camera_to_world"), [1.0] * 12, "camera_path[1].camera_to_world is [1.0"),
    (("camera_path", 1, "camera_to_world"), [1.0] * 15 + ["x"], "camera_path[1].camera_to_world"),
    (("camera_path", 2, "camera_to_world"), _SCALED,
     "camera_path[2].camera_to_world has a top-left 3x3 that is not a rotation"),
    (("camera_path", 0, "camera_to_world"), _COLUMN_MAJOR, "camera_path[0].camera_to_world has the last row"),
    (("camera_path", 1, "fov"), _DELETE, "camera_path[1].fov is None; expected a vertical field of view in degrees"),
    (("camera_path", 1, "fov"), 0.0, "camera_path[1].fov is 0.0"),
    (("camera_path", 2, "fov"), 180, "camera_path[2].fov is 180"),
    (("camera_path", 0), "frame", "camera_path[0] is str"),
    (("camera_type",), "fisheye", "camera_type is 'fisheye'; expected one of ('perspective',)"),
    (("camera_type",), "equirectangular", "camera_type is 'equirectangular'"),
    (("render_width",), _DELETE, "render_width is None; expected an integer >= 1"),
    (("render_height",), 0, "render_height is 0"),
    (("render_height",), 47.5, "render_height is 47.5"),
    (("fps",), _DELETE, "fps is None; expected frames per second > 0"),
    (("fps",), 0, "fps is 0"),
    (("keyframes",), [{"camera_to_world": [0.0] * 16, "fov": 40.0}], "keyframes[0].camera_to_world has a top-left"),
])
def test_bad_camera_path_files_give_one_line_naming_the_file_and_field(tmp_path, keys, value, needle):
    data = _good()
    _set(data, keys, value)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        path_files.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and needle in message and "\n" not in message, message


def test_unreadable_and_missing_files_are_named(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"camera_path": [')
    with pytest.raises(ConfigError, match=f"{path} cannot be read .*expected a camera path JSON"):
        path_files.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match=f"{path}: expected a JSON object"):
        path_files.load(path)
    with pytest.raises(ConfigError, match=f"{tmp_path / 'gone.json'}: no such file"):
        path_files.load(tmp_path / "gone.json")


def test_render_path_file_needs_a_file(tmp_path):
    with pytest.raises(ConfigError, match="config.render_path_file='': expected a camera path JSON file with render_path='file'"):
        check_config(tiny_config(tmp_path, tmp_path, render_path="file"))
    config = tiny_config(tmp_path, tmp_path / "run", render_path="file", render_path_file="camera_paths/none.json")
    check_config(config)
    missing = tmp_path / "run" / "camera_paths" / "none.json"
    with pytest.raises(ConfigError, match="render_path_file='camera_paths/none.json': no such file "
                                          f"\\(neither camera_paths/none.json nor {missing}\\)"):
        render.render_video(config, log=lambda s: None)


def vertical_fov(split: datasets.Split, index: int) -> float:
    return 2 * math.atan(0.5 * split.height / float(split.intrinsics.fy[index]))


@pytest.fixture
def captured_frames(monkeypatch):
    """The frames `video.write_video` is given, by stem name, as it writes them."""
    frames, write = {}, video.write_video

    def capture(stem, images, fps):
        frames[stem.name] = (images, fps)
        return write(stem, images, fps)

    monkeypatch.setattr(video, "write_video", capture)
    return frames


def test_render_path_file_renders_the_keyframes_cameras(tiny_scene, trained_run, captured_frames):
    config = run_config(tiny_scene, trained_run, render_path="file", render_path_file="camera_paths/two.json")
    train = datasets.load_split(config, "train")
    keyframes = [Keyframe(train.camtoworlds[i].astype(np.float64), vertical_fov(train, i)) for i in (0, 3)]
    # Saved where the viewer saves, named relative to exp_dir; 20x16 pixels, 3 frames, the last the second keyframe.
    path_files.save(trained_run / "camera_paths" / "two.json", keyframes, seconds=0.5, fps=6, width=20, height=16)
    messages = []
    written = render.render_video(config, log=messages.append)
    assert [p.name for p in written] == [f"two_{kind}.{ext}" for kind in ("color", "depth") for ext in ("mp4", "gif")]
    for p in written:
        assert p.parent == trained_run / "render"
        assert iio.imread(p, index=None).shape == (3, 16, 20, 3), p
    assert "3 frames of 20x16 at 6 fps" in messages[-1]
    color, fps = captured_frames["two_color"]
    assert fps == 6.0
    # Frames 0 and 2 are the keyframes' cameras, rendered at that size with a pinhole of that fov.
    renderer = rendering.load_renderer(config, log=lambda s: None)
    for frame, (index, key) in zip((0, 2), zip((0, 3), keyframes)):
        focal = 0.5 * 16 / math.tan(0.5 * key.fov)
        np.testing.assert_allclose(focal, train.intrinsics.fy[index], rtol=1e-6)
        expected, = rendering.render_views(renderer, train.camtoworlds[index][None], camera.Intrinsics.pinhole(focal, 20, 16),
                                           16, 20, config, desc="test")
        np.testing.assert_allclose(color[frame], video.to_uint8(expected.rgb), atol=1)


def test_a_keyframe_at_a_training_camera_renders_its_image(tiny_scene, trained_run, captured_frames):
    """The file's convention is the training cameras': the same pose and fov give the training image back."""
    config = run_config(tiny_scene, trained_run, render_path="file")
    train = datasets.load_split(config, "train")
    index = 5
    pose = train.camtoworlds[index].astype(np.float64)
    shifted = pose.copy()
    shifted[:3, 3] += 0.8 * pose[:3, 0]  # the same camera moved sideways
    psnr = {}
    for name, c2w in [("exact", pose), ("shifted", shifted)]:
        path = path_files.save(trained_run / "camera_paths" / f"{name}.json", [Keyframe(c2w, vertical_fov(train, index))],
                                seconds=1.0, fps=1, width=train.width, height=train.height)
        config.render_path_file = str(path)
        render.render_video(config, log=lambda s: None)
        frames, _ = captured_frames[f"{name}_color"]
        assert frames.shape == (1, train.height, train.width, 3)
        psnr[name] = metrics.psnr(frames[0] / 255.0, train.colors(index))
    assert psnr["exact"] > 18 and psnr["exact"] > psnr["shifted"] + 3, psnr
