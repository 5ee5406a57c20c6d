"""Entry points as a user runs them: bad input is one line naming the culprit, no traceback."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import captures
from helpers import ROOT, assert_one_line_error
from mipnerf.datasets import colmap_model as cm


def run_train(*flags, timeout=120):
    return subprocess.run([sys.executable, "train.py", *flags], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def broken_scene(tiny_scene, tmp_path):
    scene = tmp_path / "scene"
    shutil.copytree(tiny_scene, scene)
    return scene


@pytest.mark.parametrize("flags,needles", [
    (["--config=configs/blender.py"], ["config.data_dir"]),
    (["--config=configs/blender.py", "--config.data_dir=/no/such/folder"], ["/no/such/folder"]),
    (["--config.batch_sizee=4"], ["batch_sizee", "batch_size"]),
    (["--config.batch_size=many"], ["batch_size", "many"]),
    (["--config.batch_size=-8"], ["config.batch_size", ">= 1"]),
    (["--config.near=7"], ["config.far", "near"]),
    (["--config.precision=fp8"], ["config.precision", "bf16"]),
    (["--config.basis=cube"], ["config.basis", "icosahedron"]),
    (["--config=configs/360.py", "--config.dataset=demo360", "--config.near=0"], ["config.near", "disparity"]),
    (["--config=configs/missing.py"], ["configs/missing.py"]),
    (["--config=configs/multiscale.py", "--config.factor=2"], ["config.factor=2", "dataset='multiscale'"]),
    (["--config.num_processes=2"], ["config.num_processes=2", "coordinator_address"]),
    (["--config.coordinator_address=host0", "--config.num_processes=2"], ["host0", "host:port"]),
    (["--config.coordinator_address=127.0.0.1:1", "--config.num_processes=2", "--config.process_id=2"],
     ["config.process_id=2", "[0, 2)"]),
])
def test_bad_flags_give_one_line(flags, needles, tmp_path):
    assert_one_line_error(run_train(*flags, f"--config.exp_dir={tmp_path}"), *needles)


def test_broken_json_gives_one_line(broken_scene, tmp_path):
    (broken_scene / "transforms_train.json").write_text('{"camera_angle_x": 0.7, "frames": [')
    result = run_train("--config=configs/blender.py", f"--config.data_dir={broken_scene}", f"--config.exp_dir={tmp_path}")
    assert_one_line_error(result, "transforms_train.json")


def test_truncated_png_gives_one_line(broken_scene, tmp_path):
    frame = json.loads((broken_scene / "transforms_train.json").read_text())["frames"][3]
    png = broken_scene / (frame["file_path"] + ".png")
    png.write_bytes(png.read_bytes()[: png.stat().st_size // 2])
    result = run_train("--config=configs/blender.py", f"--config.data_dir={broken_scene}", f"--config.exp_dir={tmp_path}")
    assert_one_line_error(result, png.name)


def _truncate(path, keep=0.6):
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


def _text_model_with_bad_line(root):
    sparse = root / "sparse" / "0"
    cm.write_model(cm.read_model(sparse), sparse, binary=False)
    for name in ("cameras", "images", "points3D"):
        (sparse / f"{name}.bin").unlink()
    path = sparse / "images.txt"
    lines = path.read_text().splitlines()
    lines[5] = lines[5].replace(".png", ".png extra")  # the second image's pose line (header: 3 lines)
    path.write_text("\n".join(lines) + "\n")


def _unsupported_camera(root):
    sparse = root / "sparse" / "0"
    model = cm.read_model(sparse)
    cm.write_model(model._replace(cameras={1: model.cameras[1]._replace(model="FOV", params=np.ones(5))}), sparse)


# Each breaks a 10-image capture (images/, images_2/, sparse/0/) in one way: (damage, factor, needles).
CAPTURE_BREAKAGES = {
    "no poses": (lambda r: shutil.rmtree(r / "sparse"), 1, ["sparse/0/", "poses_bounds.npy"]),
    "truncated bin": (lambda r: _truncate(r / "sparse" / "0" / "points3D.bin"), 1, ["points3D.bin is truncated"]),
    "malformed txt": (_text_model_with_bad_line, 1, ["images.txt: line 6", "CAMERA_ID NAME"]),
    "missing image": (lambda r: (r / "images" / "img_003.png").unlink(), 1, ["images/img_003.png is missing"]),
    "images_N count": (lambda r: (r / "images_2" / "img_003.png").unlink(), 2, ["images_2 holds 9", "holds 10"]),
    "images_N size": (lambda r: Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(r / "images_2" / "img_005.png"), 2,
                      ["img_005.png is 9x9", "24x16"]),
    "camera model": (_unsupported_camera, 1, ["FOV", "OPENCV_FISHEYE"]),
    "poses_bounds shape": (lambda r: np.save(r / "poses_bounds.npy", np.zeros((10, 15))), 1,
                           ["poses_bounds.npy has shape [10, 15]", "[10, 17]"]),
}


@pytest.mark.parametrize("breakage", CAPTURE_BREAKAGES)
def test_broken_capture_gives_one_line_and_writes_nothing(breakage, tmp_path):
    damage, factor, needles = CAPTURE_BREAKAGES[breakage]
    captures.write_capture(tmp_path / "capture", count=10)
    damage(tmp_path / "capture")
    exp_dir = tmp_path / "exp"
    result = run_train("--config=configs/demo360.py", "--config.dataset=colmap", f"--config.data_dir={tmp_path / 'capture'}",
                       f"--config.factor={factor}", f"--config.exp_dir={exp_dir}")
    assert_one_line_error(result, str(tmp_path / "capture"), *needles)
    assert not exp_dir.exists()


def test_too_few_training_images_gives_one_line(tmp_path):
    captures.write_capture(tmp_path / "capture", count=2)
    result = run_train("--config=configs/demo360.py", "--config.dataset=colmap", f"--config.data_dir={tmp_path / 'capture'}",
                       f"--config.exp_dir={tmp_path / 'exp'}")
    assert_one_line_error(result, "2 images leave 1 training image", "llffhold=8", "at least 2")


# An entry point whose main meets an OSError from a bug: a file nobody named, deep in the code.
OSERROR_DRIVER = """
import errno, os
from mipnerf.commands import cli
def read_weights():
    raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), "/nowhere/weights.bin")
cli.run(lambda argv: read_weights())
"""


def run_oserror_driver(debug: bool):
    env = {k: v for k, v in os.environ.items() if k != "MIPNERF_DEBUG"}
    env.update(dict(MIPNERF_DEBUG="1") if debug else {}, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", OSERROR_DRIVER], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)


def test_an_oserror_is_one_line_that_says_how_to_see_where_it_came_from():
    result = run_oserror_driver(debug=False)
    assert_one_line_error(result, "No such file or directory: /nowhere/weights.bin", "MIPNERF_DEBUG=1")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_mipnerf_debug_prints_the_traceback_of_an_oserror():
    result = run_oserror_driver(debug=True)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "in read_weights" in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: No such file or directory: /nowhere/weights.bin")


def test_the_default_config_is_found_from_another_working_directory(tmp_path):
    """eval.py run from elsewhere reads configs/demo.py and gets as far as the missing run."""
    result = subprocess.run([sys.executable, str(ROOT / "eval.py"), f"--config.exp_dir={tmp_path / 'none'}"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert_one_line_error(result, str(tmp_path / "none"), "no checkpoint")


@pytest.mark.parametrize("stop,code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_stop_whose_exception_is_lost_still_ends_the_process(tmp_path, stop, code):
    """Python drops an exception raised inside a finalizer; a command whose stop was lost that way
    (here: swallowed on purpose) still ends with the stop's line and exit code, STOP_GRACE_S later."""
    import signal
    import time

    script = tmp_path / "swallow.py"
    script.write_text(f"""import sys, time
sys.path.insert(0, {str(ROOT)!r})
from mipnerf.commands import cli
cli.STOP_GRACE_S = 1.0

def main(argv):
    print("ready", flush=True)
    while True:
        try:
            time.sleep(0.05)
        except BaseException:  # as a finalizer's exception is dropped
            pass

cli.run(main)
""")
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    child.send_signal(getattr(signal, stop))
    sent = time.monotonic()
    _, err = child.communicate(timeout=60)
    assert child.returncode == code and time.monotonic() - sent < 20
    assert err.strip().splitlines()[-1] == ("interrupted (Ctrl-C)" if stop == "SIGINT" else "terminated (SIGTERM)")
