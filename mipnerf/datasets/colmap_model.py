"""COLMAP sparse models on disk: `cameras`, `images` and `points3D`, in binary (.bin) or text (.txt).

Binary files are little-endian (COLMAP's `read_write_model` layout); text files carry the same
fields with `#` comment lines, an image on two lines (its pose, then its 2D points). Readers
check every record and raise `DatasetError` naming the file (and the line, for text) where it
is cut short or malformed. Poses are world-to-camera: camera +X right, +Y down, +Z forward.
"""

import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mipnerf.errors import DatasetError

# Camera models: name -> (id, number of parameters).
CAMERA_MODELS = {
    "SIMPLE_PINHOLE": (0, 3),  # f cx cy
    "PINHOLE": (1, 4),  # fx fy cx cy
    "SIMPLE_RADIAL": (2, 4),  # f cx cy k
    "RADIAL": (3, 5),  # f cx cy k1 k2
    "OPENCV": (4, 8),  # fx fy cx cy k1 k2 p1 p2
    "OPENCV_FISHEYE": (5, 8),  # fx fy cx cy k1 k2 k3 k4
}
# Models COLMAP defines that this package does not undistort: id -> (name, number of parameters).
OTHER_MODELS = {6: ("FULL_OPENCV", 12), 7: ("FOV", 5), 8: ("SIMPLE_RADIAL_FISHEYE", 4),
                9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12), 11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16)}
_MODEL_BY_ID = {i: (name, n) for name, (i, n) in CAMERA_MODELS.items()} | OTHER_MODELS
_PARAM_COUNTS = {name: n for name, n in _MODEL_BY_ID.values()}
_MODEL_IDS = {name: i for i, (name, _) in _MODEL_BY_ID.items()}
FILES = ("cameras", "images", "points3D")


class Camera(NamedTuple):
    """id; model: a COLMAP model name ("PINHOLE", ...); width, height: pixels; params: [P] float64."""

    id: int
    model: str
    width: int
    height: int
    params: np.ndarray


class Image(NamedTuple):
    """One registered image.

    qvec: [4] (w, x, y, z) rotation and tvec: [3] translation, world to camera.
    xys: [K, 2] float64 pixel positions of its features; point3d_ids: [K] int64 (-1: no 3D point).
    """

    id: int
    qvec: np.ndarray
    tvec: np.ndarray
    camera_id: int
    name: str
    xys: np.ndarray
    point3d_ids: np.ndarray


class Points(NamedTuple):
    """ids: [P] int64; xyz: [P, 3] float64; rgb: [P, 3] uint8; errors: [P] float64;
    tracks: P arrays [L, 2] int64 of (image_id, point2d_idx)."""

    ids: np.ndarray
    xyz: np.ndarray
    rgb: np.ndarray
    errors: np.ndarray
    tracks: list


class Model(NamedTuple):
    """A sparse reconstruction: cameras and images keyed by id, and the 3D points."""

    cameras: dict
    images: dict
    points: Points


# --- binary -----------------------------------------------------------------------------------


class _Reader:
    """Reads little-endian records from a file's bytes; a short read names the file."""

    def __init__(self, path: Path):
        self.path, self.data, self.pos = path, path.read_bytes(), 0

    def take(self, fmt: str, what: str):
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise DatasetError(f"{self.path} is truncated: it ends inside {what} (byte {len(self.data)}); "
                               f"expected a complete COLMAP binary file")
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if self.pos + size > len(self.data):
            raise DatasetError(f"{self.path} is truncated: it ends inside {what} (byte {len(self.data)}); "
                               f"expected a complete COLMAP binary file")
        out = np.frombuffer(self.data, dtype, count, self.pos)
        self.pos += size
        return out

    def name(self, what: str) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise DatasetError(f"{self.path} is truncated: it ends inside {what}; expected a complete COLMAP binary file")
        text = self.data[self.pos:end].decode("utf-8", errors="replace")
        self.pos = end + 1
        return text

    def done(self) -> None:
        if self.pos != len(self.data):
            raise DatasetError(f"{self.path} has {len(self.data) - self.pos} bytes after its last record; "
                               f"expected exactly the records its count announces")


def _model_of(model_id: int, where: str) -> tuple[str, int]:
    if model_id not in _MODEL_BY_ID:
        raise DatasetError(f"{where}: unknown camera model id {model_id}; expected one of {sorted(_MODEL_BY_ID)}")
    return _MODEL_BY_ID[model_id]


def _read_cameras_bin(path: Path) -> dict:
    r = _Reader(path)
    cameras = {}
    for k in range(r.take("Q", "the camera count")[0]):
        what = f"camera {k}"
        cam_id, model_id, width, height = r.take("iiQQ", what)
        name, n = _model_of(model_id, f"{path}: camera {cam_id}")
        cameras[cam_id] = Camera(cam_id, name, width, height, r.array("<f8", n, what).copy())
    r.done()
    return cameras


def _read_images_bin(path: Path) -> dict:
    r = _Reader(path)
    images = {}
    for k in range(r.take("Q", "the image count")[0]):
        what = f"image {k}"
        values = r.take("i7di", what)
        name = r.name(what)
        n = r.take("Q", what)[0]
        points = r.array([("xy", "<f8", 2), ("id", "<i8")], n, f"the 2D points of image {name!r}")
        images[values[0]] = Image(values[0], np.array(values[1:5]), np.array(values[5:8]), values[8], name,
                                  points["xy"].astype(np.float64), points["id"].astype(np.int64))
    r.done()
    return images


def _read_points_bin(path: Path) -> Points:
    r = _Reader(path)
    count = r.take("Q", "the point count")[0]
    ids, xyz, rgb, errors, tracks = np.zeros(count, np.int64), np.zeros((count, 3)), np.zeros((count, 3), np.uint8), \
        np.zeros(count), []
    for k in range(count):
        what = f"point {k}"
        values = r.take("Q3d3BdQ", what)
        ids[k], xyz[k], rgb[k], errors[k] = values[0], values[1:4], values[4:7], values[7]
        tracks.append(r.array("<i4", 2 * values[8], what).reshape(-1, 2).astype(np.int64))
    r.done()
    return Points(ids, xyz, rgb, errors, tracks)


def _write_bin(folder: Path, model: Model) -> None:
    with open(folder / "cameras.bin", "wb") as f:
        f.write(struct.pack("<Q", len(model.cameras)))
        for cam in model.cameras.values():
            f.write(struct.pack("<iiQQ", cam.id, _MODEL_IDS[cam.model], cam.width, cam.height))
            f.write(np.asarray(cam.params, "<f8").tobytes())
    with open(folder / "images.bin", "wb") as f:
        f.write(struct.pack("<Q", len(model.images)))
        for im in model.images.values():
            f.write(struct.pack("<i7di", im.id, *im.qvec, *im.tvec, im.camera_id))
            f.write(im.name.encode("utf-8") + b"\0" + struct.pack("<Q", len(im.xys)))
            points = np.zeros(len(im.xys), [("xy", "<f8", 2), ("id", "<i8")])
            points["xy"], points["id"] = im.xys, im.point3d_ids
            f.write(points.tobytes())
    p = model.points
    with open(folder / "points3D.bin", "wb") as f:
        f.write(struct.pack("<Q", len(p.ids)))
        for k in range(len(p.ids)):
            f.write(struct.pack("<Q3d3BdQ", p.ids[k], *p.xyz[k], *p.rgb[k], p.errors[k], len(p.tracks[k])))
            f.write(np.asarray(p.tracks[k], "<i4").tobytes())


# --- text -------------------------------------------------------------------------------------


def _data_lines(path: Path) -> list[tuple[int, list[str]]]:
    """The non-comment lines of a text file as (1-based line number, fields)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path} cannot be read as UTF-8 text ({e})") from None
    return [(n, line.split()) for n, line in enumerate(text.splitlines(), 1) if not line.startswith("#")]


def _parse(path: Path, lineno: int, fields: list[str], types: str, expected: str, exact: bool = True):
    """Converts `fields` by `types` ("i" int, "f" float, "s" str); a mismatch names the line."""
    if len(fields) < len(types) or (exact and len(fields) != len(types)):
        raise DatasetError(f"{path}: line {lineno} has {len(fields)} fields; expected {expected}")
    try:
        return [int(v) if t == "i" else float(v) if t == "f" else v for v, t in zip(fields, types)]
    except ValueError:
        raise DatasetError(f"{path}: line {lineno} is malformed ({' '.join(fields)[:80]!r}); expected {expected}") from None


def _read_cameras_txt(path: Path) -> dict:
    cameras = {}
    for lineno, fields in _data_lines(path):
        if not fields:
            continue
        expected = "CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]"
        cam_id, name, width, height = _parse(path, lineno, fields, "isii", expected, exact=False)
        if name not in _PARAM_COUNTS:
            raise DatasetError(f"{path}: line {lineno}: unknown camera model {name!r}; expected a COLMAP model name")
        n = _PARAM_COUNTS[name]
        params = _parse(path, lineno, fields[4:], "f" * n, f"{n} parameters for a {name} camera")
        cameras[cam_id] = Camera(cam_id, name, width, height, np.array(params))
    return cameras


def _read_images_txt(path: Path) -> dict:
    lines = _data_lines(path)
    images = {}
    k = 0
    while k < len(lines):
        lineno, fields = lines[k]
        if not fields:  # a blank line between images
            k += 1
            continue
        values = _parse(path, lineno, fields, "ifffffffis", "IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME")
        if k + 1 >= len(lines):
            raise DatasetError(f"{path}: line {lineno} is an image with no line of 2D points after it; "
                               f"expected POINTS2D[] as (X, Y, POINT3D_ID) on the next line")
        lineno, fields = lines[k + 1]
        if len(fields) % 3:
            raise DatasetError(f"{path}: line {lineno} has {len(fields)} fields; expected (X, Y, POINT3D_ID) triples")
        triples = [_parse(path, lineno, fields[j:j + 3], "ffi", "(X, Y, POINT3D_ID) triples") for j in range(0, len(fields), 3)]
        xys = np.array([t[:2] for t in triples], np.float64).reshape(-1, 2)
        ids = np.array([t[2] for t in triples], np.int64)
        images[values[0]] = Image(values[0], np.array(values[1:5]), np.array(values[5:8]), values[8], values[9], xys, ids)
        k += 2
    return images


def _read_points_txt(path: Path) -> Points:
    rows = []
    for lineno, fields in _data_lines(path):
        if not fields:
            continue
        expected = "POINT3D_ID X Y Z R G B ERROR TRACK[] as (IMAGE_ID, POINT2D_IDX) pairs"
        values = _parse(path, lineno, fields, "ifffiiif", expected, exact=False)
        if (len(fields) - 8) % 2:
            raise DatasetError(f"{path}: line {lineno} has {len(fields)} fields; expected {expected}")
        track = _parse(path, lineno, fields[8:], "i" * (len(fields) - 8), expected)
        rows.append((values, np.array(track, np.int64).reshape(-1, 2)))
    return Points(np.array([v[0] for v, _ in rows], np.int64), np.array([v[1:4] for v, _ in rows], np.float64).reshape(-1, 3),
                  np.array([v[4:7] for v, _ in rows], np.uint8).reshape(-1, 3), np.array([v[7] for v, _ in rows], np.float64),
                  [t for _, t in rows])


def _fmt(x) -> str:
    return repr(float(x))


def _write_txt(folder: Path, model: Model) -> None:
    lines = ["# Camera list with one line of data per camera:", "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]"]
    lines += [" ".join([str(c.id), c.model, str(c.width), str(c.height)] + [_fmt(p) for p in c.params])
              for c in model.cameras.values()]
    (folder / "cameras.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines = ["# Image list with two lines of data per image:",
             "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME", "#   POINTS2D[] as (X, Y, POINT3D_ID)"]
    for im in model.images.values():
        lines.append(" ".join([str(im.id)] + [_fmt(v) for v in (*im.qvec, *im.tvec)] + [str(im.camera_id), im.name]))
        lines.append(" ".join(f"{_fmt(x)} {_fmt(y)} {int(i)}" for (x, y), i in zip(im.xys, im.point3d_ids)))
    (folder / "images.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    p = model.points
    lines = ["# 3D point list with one line of data per point:",
             "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)"]
    for k in range(len(p.ids)):
        lines.append(" ".join([str(p.ids[k])] + [_fmt(v) for v in p.xyz[k]] + [str(v) for v in p.rgb[k]]
                              + [_fmt(p.errors[k])] + [str(int(v)) for v in np.ravel(p.tracks[k])]))
    (folder / "points3D.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- the model --------------------------------------------------------------------------------

_READERS = {".bin": (_read_cameras_bin, _read_images_bin, _read_points_bin),
            ".txt": (_read_cameras_txt, _read_images_txt, _read_points_txt)}


def model_format(folder) -> str | None:
    """".bin" when `folder` holds the three binary files (preferred), else ".txt" when it holds the
    three text files, else None."""
    folder = Path(folder)
    for ext in (".bin", ".txt"):
        if all((folder / f"{name}{ext}").is_file() for name in FILES):
            return ext
    return None


def read_model(folder) -> Model:
    """Reads `cameras`, `images` and `points3D` from `folder`, binary when all three exist, else text."""
    folder = Path(folder)
    ext = model_format(folder)
    if ext is None:
        present = sorted(p.name for p in folder.glob("*")) if folder.is_dir() else []
        raise DatasetError(f"{folder} holds {present or 'no files'}; expected a COLMAP model: "
                           f"cameras, images and points3D, all .bin or all .txt")
    read_cameras, read_images, read_points = _READERS[ext]
    cameras = read_cameras(folder / f"cameras{ext}")
    images = read_images(folder / f"images{ext}")
    for im in images.values():
        if im.camera_id not in cameras:
            raise DatasetError(f"{folder / ('images' + ext)}: image {im.name!r} uses camera {im.camera_id}, which "
                               f"cameras{ext} does not define; expected one of {sorted(cameras)}")
    return Model(cameras, images, read_points(folder / f"points3D{ext}"))


def write_model(model: Model, folder, binary: bool = True) -> None:
    """Writes `model` into `folder` (created if needed) as .bin files, or .txt files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (_write_bin if binary else _write_txt)(folder, model)
