"""What LPIPS costs per test view: seconds and peak memory at one image size.

    python benchmarks/lpips_cost.py [--width=1250 --height=830] [--repeats=3]

Scores a pair of random images of that size with `metrics.lpips` (AlexNet, then VGG16): the first
call's seconds (loading and compiling), then the mean of `--repeats` more, and the process's peak
memory (host RSS on a CPU, device memory on a GPU) after both. An image of more than
`metrics.LPIPS_MAX_PIXELS` pixels is scored in tiles; the tile count is printed. Run one size per
process, since the peak is the process's. One line per figure, then one line of JSON.
"""

import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

from benchmarks.common import Figures, peak_memory_mb  # noqa: E402

_WIDTH = flags.DEFINE_integer("width", 1250, "image width (the mip-NeRF 360 test views at factor 4: about 1250)")
_HEIGHT = flags.DEFINE_integer("height", 830, "image height")
_REPEATS = flags.DEFINE_integer("repeats", 3, "timed calls after the first")


def main(argv):
    del argv
    import jax
    import numpy as np

    from mipnerf import metrics

    rng = np.random.default_rng(0)
    a = rng.random((_HEIGHT.value, _WIDTH.value, 3), dtype=np.float32)
    b = np.clip(a + rng.normal(0, 0.05, a.shape).astype(np.float32), 0, 1)
    figures = Figures()
    figures.update(device=jax.devices()[0].device_kind, width=_WIDTH.value, height=_HEIGHT.value)
    if a.shape[0] * a.shape[1] > metrics.LPIPS_MAX_PIXELS:
        for net in metrics.LPIPS_NETS:
            rows, cols = metrics.lpips_tile_cores(net, *a.shape[:2], metrics.LPIPS_MAX_PIXELS)
            figures[f"{net}_tiles"] = -(-a.shape[0] // rows) * -(-a.shape[1] // cols)
    for net in metrics.LPIPS_NETS:
        tic = time.time()
        metrics.lpips(a, b, net)
        figures[f"{net}_first_s"] = time.time() - tic
        tic = time.time()
        for _ in range(_REPEATS.value):
            value = metrics.lpips(a, b, net)
        figures[f"{net}_s"] = (time.time() - tic) / _REPEATS.value
        figures[f"{net}_value"] = value
    figures["peak_memory_mb"] = peak_memory_mb()
    print(json.dumps(figures))


if __name__ == "__main__":
    app.run(main)
