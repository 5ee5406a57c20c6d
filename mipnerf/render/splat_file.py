"""Splats (`gaussians.Splats`) as files in the layout of the original 3D Gaussian splatting
implementation, so that its viewers and tools read ours and we read theirs, and moved between frames.

The file is a binary little-endian PLY with one `vertex` element of float32 properties, in order:
x y z, nx ny nz (zero), f_dc_0..2 (the constant band, per channel), f_rest_0..f_rest_{3(K-1)-1}
(the other K - 1 coefficients, channel-major: every red one, then green, then blue), opacity (the
logit), scale_0..2 (logs), rot_0..3 (the quaternion, w first). The SH degree is read off the number
of f_rest_ properties.

Splats are trained in the model's frame; `capture_transform` gives the map back to the capture's
world frame (COLMAP's, say) and `transform_splats` moves them there.
"""

import pathlib
from typing import Optional

import numpy as np
import plyfile

from mipnerf.cameras.conventions import matrix_to_quaternion
from mipnerf.datasets.split import Split
from mipnerf.errors import ConfigError
from mipnerf.render import gaussians

_RNG_SEED = 0
_BASIS_DIRECTIONS = 64  # generic unit directions the SH rotation is fitted on, more than the 7 of band 3
_SIMILARITY_TOLERANCE = 1e-3  # how far the 3x3 of a transform over its scale may be from orthogonal


def property_names(sh_degree: int) -> list[str]:
    """The vertex properties of a file of degree `sh_degree`, in the original's order."""
    rest = 3 * ((sh_degree + 1) ** 2 - 1)
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(rest)]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def write_splats(path, splats: gaussians.Splats) -> None:
    """Writes N splats (any SH degree 0..3) to `path` as a binary little-endian PLY (module docstring)."""
    sh = np.asarray(splats.sh, np.float32)
    n = len(sh)
    columns = [np.asarray(splats.means), np.zeros((n, 3)), sh[:, 0], np.swapaxes(sh[:, 1:], 1, 2).reshape(n, -1),
               np.asarray(splats.opacity_logits).reshape(n, 1), np.asarray(splats.log_scales), np.asarray(splats.quats)]
    values = np.concatenate([np.asarray(c, np.float32).reshape(n, -1) for c in columns], axis=1)
    names = property_names(splats.sh_degree)
    vertices = np.empty(n, dtype=[(name, "<f4") for name in names])
    for i, name in enumerate(names):
        vertices[name] = values[:, i]
    plyfile.PlyData([plyfile.PlyElement.describe(vertices, "vertex")], byte_order="<").write(str(path))


def read_splats(path) -> gaussians.Splats:
    """The splats of a PLY in the original's layout (ours or the original's), as float32 numpy arrays.

    Raises `ConfigError` in one line naming the file and what was expected of it.
    """
    path = pathlib.Path(path)
    expected = "a 3D Gaussian splatting PLY (a vertex element with x, y, z, f_dc_*, f_rest_*, opacity, scale_*, rot_*)"
    try:
        ply = plyfile.PlyData.read(str(path))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; expected {expected}") from None
    except (OSError, ValueError, EOFError, plyfile.PlyParseError) as e:
        raise ConfigError(f"{path} cannot be read as a PLY ({e}); expected {expected}") from None
    if "vertex" not in ply:
        raise ConfigError(f"{path} has no vertex element; expected {expected}")
    vertex = ply["vertex"]
    present = {p.name for p in vertex.properties}
    rest = [name for name in present if name.startswith("f_rest_")]
    rest_degrees = {3 * ((d + 1) ** 2 - 1): d for d in range(gaussians.MAX_SH_DEGREE + 1)}
    if len(rest) not in rest_degrees:
        raise ConfigError(f"{path} has {len(rest)} f_rest_ properties; expected 0, 9, 24 or 45 (SH degree 0 to 3)")
    degree = rest_degrees[len(rest)]
    missing = [name for name in property_names(degree) if name not in present and name[0] != "n"]
    if missing:
        raise ConfigError(f"{path} lacks the vertex properties {', '.join(missing)}; expected {expected}")

    def columns(*names) -> np.ndarray:
        return np.array([vertex[name] for name in names], np.float32).reshape(len(names), vertex.count).T

    n, k = vertex.count, (degree + 1) ** 2
    sh = np.concatenate([columns("f_dc_0", "f_dc_1", "f_dc_2")[:, None],
                         np.swapaxes(columns(*(f"f_rest_{i}" for i in range(3 * (k - 1)))).reshape(n, 3, k - 1), 1, 2)],
                        axis=1)
    return gaussians.Splats(means=columns("x", "y", "z"), log_scales=columns("scale_0", "scale_1", "scale_2"),
                            quats=columns("rot_0", "rot_1", "rot_2", "rot_3"), opacity_logits=columns("opacity")[:, 0],
                            sh=sh)


def sh_rotation(rotation: np.ndarray, degree: int) -> np.ndarray:
    """[K, K] (K = (degree + 1)^2) map of SH coefficients c [K, 3] to `X @ c`, whose colour along
    rotation @ d is c's along d, for any orthogonal 3x3 `rotation` (reflections too).

    Block diagonal: each band's (2l + 1)^2 block solves Y_l(rotation^T e_i) = X_l^T Y_l(e_i) by least
    squares at generic unit directions e_i, exact since a band's span is closed under orthogonal maps.
    """
    dirs = np.random.default_rng(_RNG_SEED).normal(size=(_BASIS_DIRECTIONS, 3))
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    basis = np.asarray(gaussians.sh_basis(dirs, degree), np.float64)
    moved = np.asarray(gaussians.sh_basis(dirs @ np.asarray(rotation), degree), np.float64)  # rows rotation^T e_i
    out = np.zeros(((degree + 1) ** 2,) * 2)
    for band in range(degree + 1):
        s = slice(band * band, (band + 1) ** 2)
        out[s, s] = np.linalg.lstsq(basis[:, s], moved[:, s], rcond=None)[0]
    return out


def _quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton products a b of quaternions [..., 4] (w, x, y, z)."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def transform_splats(splats: gaussians.Splats, transform: np.ndarray) -> gaussians.Splats:
    """The splats moved by a 4x4 similarity x -> s R x + t (R orthogonal, a reflection allowed; s > 0).

    Means are mapped, covariances become s^2 R Sigma R^T (log scales + log s, quaternions composed
    with R, normalised), and the SH coefficients are rotated so that the colour seen along R d is
    the old one along d. Opacities are kept. Returns float32 numpy arrays.
    """
    transform = np.asarray(transform, np.float64)
    scale = float(np.cbrt(abs(np.linalg.det(transform[:3, :3]))))
    rotation = transform[:3, :3] / scale if scale > 0 else transform[:3, :3]
    if (scale <= 0 or np.abs(rotation.T @ rotation - np.eye(3)).max() > _SIMILARITY_TOLERANCE
            or np.abs(transform[3] - [0, 0, 0, 1]).max() > _SIMILARITY_TOLERANCE):
        raise ValueError(f"transform {transform.tolist()} is not a similarity; expected [[s R, t], [0, 0, 0, 1]] "
                         f"with R orthogonal and s > 0")
    # A reflection R is -1 times the rotation -R, and -1 commutes with the scales: Sigma' = s^2 (-R R_q) S^2 (..)^T.
    turn = matrix_to_quaternion(np.sign(np.linalg.det(rotation)) * rotation)
    quats = _quat_multiply(turn, np.asarray(splats.quats, np.float64))
    sh = np.einsum("jk,nkc->njc", sh_rotation(rotation, splats.sh_degree), np.asarray(splats.sh, np.float64))
    return gaussians.Splats(
        means=(np.asarray(splats.means, np.float64) @ transform[:3, :3].T + transform[:3, 3]).astype(np.float32),
        log_scales=(np.asarray(splats.log_scales, np.float64) + np.log(scale)).astype(np.float32),
        quats=(quats / np.linalg.norm(quats, axis=-1, keepdims=True)).astype(np.float32),
        opacity_logits=np.asarray(splats.opacity_logits, np.float32),
        sh=sh.astype(np.float32))


def capture_transform(train: Split, original: bool = False) -> Optional[np.ndarray]:
    """The 4x4 similarity from the model's frame to the capture's world frame: the inverse of the
    loader's normalisation `train.transform` (what the run's `transform.json` records as
    world_to_model), or None where the two frames are one (Blender scenes).

    original: for a transforms.json with nerfstudio's `applied_transform`, map further back to the
      frame its poses were made in (COLMAP's, for ns-process-data; `transform.json`'s original_to_model).
    """
    if train.transform is None:
        return None
    to_model = train.transform
    if original and train.applied_transform is not None:
        to_model = to_model @ train.applied_transform
    return np.linalg.inv(to_model)


RUN_FILE = pathlib.Path("export") / "splats.ply"  # a run's splats, under its exp_dir (export.py --config.export=splats)


def read_run_splats(exp_dir, train: Split) -> gaussians.Splats:
    """A run's splats (`RUN_FILE`, in the capture's world frame) moved into the model's frame, the
    frame of `train`'s cameras; `ConfigError` naming the file when it is missing or malformed."""
    path = pathlib.Path(exp_dir) / RUN_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; make the run's splats with export.py --config.export=splats")
    splats = read_splats(path)
    to_capture = capture_transform(train)
    return splats if to_capture is None else transform_splats(splats, np.linalg.inv(to_capture))
