"""The viewer without a browser: frame sizes, and the one-line errors of view.py."""

import socket
import subprocess
import sys

import numpy as np

from helpers import ROOT, assert_one_line_error
from mipnerf.viewer import server


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
