"""Entry points as a user runs them: bad input is one line naming the culprit, no traceback."""

import json
import shutil
import subprocess
import sys

import pytest

from helpers import ROOT, assert_one_line_error


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
    (["--config=configs/missing.py"], ["configs/missing.py"]),
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
