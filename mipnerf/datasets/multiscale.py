"""The multiscale Blender format of mip-NeRF, its loader, and a converter from the Blender format.

```
scene/
  metadata.json            {"train": {"file_path": [...], "cam2world": [...], "width": [...], "height": [...],
                                      "focal": [...], "label": [...], "near": [...], "far": [...],
                                      "lossmult": [...], "pix2cam": [...] (optional)}, "val": {...}, "test": {...}}
  train/r_0_d0.png ...     RGBA, composited onto white
```

Per split, parallel lists with one entry per image: `label` is the scale (0 full resolution,
1 half, ...), `lossmult` its loss weight (4^label, so that every scale weighs the same),
`cam2world` a 3x4 or 4x4 camera-to-world matrix (Blender/OpenGL convention), `focal` in pixels of
that image, and `pix2cam` (optional) the 3x3 map from pixel positions (u, v, 1) to camera
directions, which gives the principal point. Images of one split differ in size: the loader
returns one `Split` per scale.

    python -m mipnerf.datasets.multiscale SRC DST [--scales 4]

converts a Blender-format scene: every image at full, 1/2, 1/4, ... resolution by repeated 2x2
box averaging of the straight RGBA values.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mipnerf.cameras.camera import DISTORTION_COEFFICIENTS, Intrinsics
from mipnerf.datasets import blender, frames
from mipnerf.datasets.builtin import demo
from mipnerf.datasets.builtin.scene_cache import cached_scene
from mipnerf.datasets.image_io import read_image, read_images_into, to_uint8
from mipnerf.datasets.split import Split
from mipnerf.errors import DatasetError, MipNerfError

KEYS = ("file_path", "cam2world", "width", "height", "focal", "label", "near", "far", "lossmult")
SPLITS = ("train", "val", "test")


def _read_metadata(data_dir: Path, split: str) -> tuple[dict, Path]:
    """The split's lists from `metadata.json`, checked: every key, equal lengths."""
    meta, path = frames.read_json(data_dir, "metadata.json", "the multiscale scene's metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get(split), dict):
        raise DatasetError(f"{path} has no '{split}' object; expected one per split, each holding the lists {list(KEYS)}")
    lists = meta[split]
    missing = [k for k in KEYS if not isinstance(lists.get(k), list)]
    if missing:
        raise DatasetError(f"{path}: split '{split}' lacks the list(s) {missing}; expected every one of {list(KEYS)}")
    lengths = {k: len(lists[k]) for k in KEYS + ("pix2cam",) if isinstance(lists.get(k), list)}
    if len(set(lengths.values())) != 1 or not lengths["file_path"]:
        raise DatasetError(f"{path}: split '{split}' has lists of lengths {lengths}; expected one non-empty length, "
                           f"an entry per image")
    return lists, path


def _entry_camera(lists: dict, k: int, where: str) -> tuple[np.ndarray, tuple]:
    """Entry k's [4, 4] camera-to-world and (fx, fy, cx, cy)."""
    try:
        c2w = np.asarray(lists["cam2world"][k], np.float64)
        width, height, focal = float(lists["width"][k]), float(lists["height"][k]), float(lists["focal"][k])
        pix2cam = np.asarray(lists["pix2cam"][k], np.float64) if "pix2cam" in lists else None
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: 'cam2world', 'width', 'height', 'focal' or 'pix2cam' is not numeric") from None
    if c2w.shape not in ((3, 4), (4, 4)) or not np.all(np.isfinite(c2w)) or not focal > 0:
        raise DatasetError(f"{where}: expected a 3x4 or 4x4 'cam2world' of finite numbers and a 'focal' > 0")
    c2w = np.concatenate([c2w[:3], [[0.0, 0.0, 0.0, 1.0]]])
    if pix2cam is None:
        return c2w, (focal, focal, width / 2, height / 2)
    # pix2cam maps (u, v, 1) to the OpenGL direction ((u - cx) / fx, -(v - cy) / fy, -1).
    if pix2cam.shape != (3, 3) or not np.allclose(pix2cam[[0, 1, 2, 2], [1, 0, 0, 1]], 0) or pix2cam[2, 2] != -1:
        raise DatasetError(f"{where}: 'pix2cam' is not a pinhole's pixel-to-camera matrix "
                           f"[[1/fx, 0, -cx/fx], [0, -1/fy, cy/fy], [0, 0, -1]]")
    fx, fy = 1 / pix2cam[0, 0], -1 / pix2cam[1, 1]
    return c2w, (fx, fy, -pix2cam[0, 2] * fx, pix2cam[1, 2] * fy)


def load_scales(data_dir, split: str, white_background: bool = True, share: tuple[int, int] = (0, 1),
                load_images: bool = True) -> list:
    """Loads one split of a multiscale scene as one `Split` per scale (images of one size each).

    Args:
      data_dir: folder holding metadata.json and the images.
      split: "train", "val" or "test".
      share: (process_index, process_count): load only this process's contiguous block of the entries.
      load_images: False for the cameras alone: each `images` is None and no image is decoded.

    Returns:
      `Split`s in increasing `scale` (the entries' label), each with `lossmult` [N] and `bounds`
      [N, 2] (the entries' near and far).
    """
    data_dir = Path(data_dir)
    lists, path = _read_metadata(data_dir, split)
    count = len(lists["file_path"])
    entries = np.arange(count)
    if share[1] > 1:
        entries = entries[frames.process_frames(count, *share, path)]
    where = lambda k: f"{path}: split '{split}', entry {k}"
    files = {k: data_dir / str(lists["file_path"][k]) for k in entries}
    groups = {}
    for k in entries:
        groups.setdefault((int(lists["label"][k]), (int(lists["height"][k]), int(lists["width"][k]))), []).append(k)

    def read(k):
        path = files[k]
        image = read_image(path, white_background, "a PNG named by its entry's 'file_path'")
        size = (int(lists["height"][k]), int(lists["width"][k]))
        if image.shape[:2] != size:
            raise DatasetError(f"{where(k)}: image file {path} is {image.shape[1]}x{image.shape[0]} pixels; expected "
                               f"its 'width' x 'height', {size[1]}x{size[0]}")
        return size, to_uint8(image)

    scales = []
    for (label, (height, width)), members in sorted(groups.items()):
        cams = [_entry_camera(lists, k, where(k)) for k in members]
        fx, fy, cx, cy = (np.array(v) for v in zip(*(c for _, c in cams)))
        scales.append(Split(
            images=read_images_into(members, [files[k] for k in members], read) if load_images else None,
            camtoworlds=np.stack([c2w for c2w, _ in cams]).astype(np.float32),
            intrinsics=Intrinsics(fx, fy, cx, cy, np.zeros((len(members), DISTORTION_COEFFICIENTS)),
                                   np.zeros(len(members), bool)),
            height=height, width=width,
            files=[str(files[k]) for k in members],
            bounds=np.array([[lists["near"][k], lists["far"][k]] for k in members], np.float32),
            lossmult=np.array([lists["lossmult"][k] for k in members], np.float32),
            scale=label,
        ))
    return scales


# --- conversion from the Blender format ---------------------------------------------------------


def _read_rgba(path: Path) -> np.ndarray:
    """[H, W, 4] float64 straight (not premultiplied) RGBA in [0, 1]."""
    read_image(path)  # the loader's checks, with their error messages
    with Image.open(path) as img:
        return np.asarray(img.convert("RGBA"), np.float64) / 255.0


def _halve(rgba: np.ndarray) -> np.ndarray:
    """2x2 box average of [H, W, C] (even sides) into [H/2, W/2, C]."""
    height, width, channels = rgba.shape
    return rgba.reshape(height // 2, 2, width // 2, 2, channels).mean(axis=(1, 3))


def convert(src, dst, scales: int = 4, near: float = 2.0, far: float = 6.0) -> None:
    """Writes the multiscale version of the Blender-format scene `src` into `dst`.

    Each image is cropped about its centre to sides divisible by 2^(scales - 1) (the principal
    point, written in `pix2cam`, stays exact), then written at scales 0 .. scales-1 by repeated
    2x2 averaging of straight RGBA, as `{split}/{name}_d{scale}.png`; focal / 2^scale, lossmult 4^scale.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise DatasetError(f"dataset folder {src} {'is not a folder' if src.exists() else 'does not exist'}; "
                           f"expected a Blender-format scene")
    block = 2 ** (scales - 1)
    meta = {}
    for split in SPLITS:
        if not (src / f"transforms_{split}.json").is_file():
            continue
        data = blender.load_split(src, split)  # checks the scene; gives the frame paths and cameras
        lists = {k: [] for k in KEYS + ("pix2cam",)}
        (dst / split).mkdir(parents=True, exist_ok=True)
        for path, c2w, fx in zip(data.files, data.camtoworlds, data.intrinsics.fx):
            rgba = _read_rgba(Path(path))
            height, width = rgba.shape[:2]
            if height < block or width < block:
                raise DatasetError(f"image file {path} is {width}x{height} pixels; expected at least {block} on each "
                                   f"side for {scales} scales")
            top, left = (height % block) // 2, (width % block) // 2
            rgba = rgba[top:top + height - height % block, left:left + width - width % block]
            cx, cy = width / 2 - left, height / 2 - top
            for scale in range(scales):
                name = f"{split}/{Path(path).stem}_d{scale}.png"
                Image.fromarray(np.round(rgba * 255).astype(np.uint8), "RGBA").save(dst / name)
                f, s = float(fx) / 2**scale, 2.0**scale
                lists["file_path"].append(name)
                lists["cam2world"].append(np.asarray(c2w, np.float64)[:3].tolist())
                lists["height"].append(rgba.shape[0])
                lists["width"].append(rgba.shape[1])
                lists["focal"].append(f)
                lists["label"].append(scale)
                lists["near"].append(near)
                lists["far"].append(far)
                lists["lossmult"].append(4.0**scale)
                lists["pix2cam"].append([[1 / f, 0.0, -cx / s / f], [0.0, -1 / f, cy / s / f], [0.0, 0.0, -1.0]])
                if scale + 1 < scales:
                    rgba = _halve(rgba)
        meta[split] = lists
    if not meta:
        raise DatasetError(f"{src} holds no transforms_{{train,val,test}}.json; expected a Blender-format scene")
    (dst / "metadata.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")


def demo_multiscale_dir(cache_dir=None) -> Path:
    """The built-in demo scene converted to 4 scales (96, 48, 24 and 12 pixels), made on first use."""
    return cached_scene(f"demo_multiscale_{demo.VERSION}", lambda out: convert(demo.demo_scene_dir(cache_dir), out),
                        cache_dir, "the multiscale demo scene")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mipnerf.datasets.multiscale", description=convert.__doc__.split("\n")[0])
    parser.add_argument("src", help="a Blender-format scene folder (transforms_*.json and PNGs)")
    parser.add_argument("dst", help="the folder to write the multiscale scene into")
    parser.add_argument("--scales", type=int, default=4, help="number of scales (default 4: 1, 1/2, 1/4, 1/8)")
    args = parser.parse_args(argv)
    if args.scales < 1:
        parser.error(f"--scales={args.scales}: expected an integer >= 1")
    try:
        convert(args.src, args.dst, args.scales)
    except MipNerfError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {Path(args.dst) / 'metadata.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
