"""A large capture in the mip-NeRF 360 layout for memory benchmarks: the built-in unbounded scene's
views upscaled, with its COLMAP model's intrinsics scaled to match. The content does not matter;
the sizes, formats and files do.

```
out/
  images_2/ images_4/   JPEG photos at half and a quarter of the camera's resolution
  sparse/0/             one PINHOLE camera at full resolution, the images' poses, no 3D points
  poses_bounds.npy      the images' near and far bounds (poses come from sparse/0/)
```
"""

import io
from pathlib import Path

import numpy as np
from PIL import Image

from mipnerf.datasets import colmap_model
from mipnerf.datasets.builtin import demo360

# (images, width, height) of images_2/: the mip-NeRF 360 dataset's room at factor 2, and a smaller default.
SIZES = {"room": (311, 1557, 1038), "default": (160, 1008, 672)}


def _jpeg(image: Image.Image, width: int, height: int) -> bytes:
    out = io.BytesIO()
    image.resize((width, height), Image.BICUBIC).save(out, "JPEG", quality=90)
    return out.getvalue()


def write_large_capture(out, count: int, width: int, height: int) -> Path:
    """Writes `count` views of `width` x `height` (images_2/) and half that (images_4/) into `out`.

    View k is the built-in scene's view k modulo its count, upscaled; the camera's full
    resolution is twice images_2/'s.
    """
    src, out = demo360.demo360_scene_dir(), Path(out)
    model = colmap_model.read_model(src / "sparse" / "0")
    sources = sorted(model.images.values(), key=lambda im: im.name)
    cam = model.cameras[sources[0].camera_id]
    sx, sy = 2 * width / cam.width, 2 * height / cam.height
    fx, fy, cx, cy = cam.params[:4] if cam.model == "PINHOLE" else (cam.params[0], cam.params[0], *cam.params[1:3])
    camera = colmap_model.Camera(1, "PINHOLE", 2 * width, 2 * height, np.array([fx * sx, fy * sy, cx * sx, cy * sy]))
    folders = {2: (width, height), 4: (width // 2, height // 2)}
    for factor in folders:
        (out / f"images_{factor}").mkdir(parents=True, exist_ok=True)
    files = {}
    images = {}
    for k in range(count):
        source = sources[k % len(sources)]
        if source.name not in files:
            with Image.open(src / "images" / source.name) as view:
                files[source.name] = {f: _jpeg(view.convert("RGB"), *size) for f, size in folders.items()}
        name = f"IMG_{k:04d}.jpg"
        for factor, data in files[source.name].items():
            (out / f"images_{factor}" / name).write_bytes(data)
        images[k + 1] = colmap_model.Image(k + 1, source.qvec, source.tvec, 1, name, np.zeros((0, 2)),
                                           np.zeros(0, np.int64))
    no_points = colmap_model.Points(np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros((0, 3), np.uint8), np.zeros(0), [])
    colmap_model.write_model(colmap_model.Model({1: camera}, images, no_points), out / "sparse" / "0")
    bounds = np.load(src / "poses_bounds.npy")  # rows in name order, as the views are
    np.save(out / "poses_bounds.npy", bounds[np.arange(count) % len(bounds)])
    return out
