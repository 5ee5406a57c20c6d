"""Splat files in the original 3D Gaussian splatting layout, and splats moved by similarity transforms."""

import numpy as np
import plyfile
import pytest
from scipy.spatial.transform import Rotation

from mipnerf.datasets.split import Split
from mipnerf.errors import ConfigError
from mipnerf.render import gaussians, splat_file

FLIP = np.diag([1.0, 1.0, -1.0])  # a reflection


def random_splats(rng, n: int, degree: int) -> gaussians.Splats:
    k = (degree + 1) ** 2
    return gaussians.Splats(means=rng.normal(size=(n, 3)).astype(np.float32),
                            log_scales=rng.normal(-2, 0.5, (n, 3)).astype(np.float32),
                            quats=rng.normal(size=(n, 4)).astype(np.float32),
                            opacity_logits=rng.normal(size=n).astype(np.float32),
                            sh=rng.normal(0, 0.3, (n, k, 3)).astype(np.float32))


def similarity(rotation, scale: float, translation) -> np.ndarray:
    transform = np.eye(4)
    transform[:3, :3] = scale * rotation
    transform[:3, 3] = translation
    return transform


def unit(rng, n: int) -> np.ndarray:
    d = rng.normal(size=(n, 3))
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def original_names(degree: int) -> list:
    """The original's `construct_list_of_attributes`, spelled out."""
    rest = [f"f_rest_{i}" for i in range(3 * ((degree + 1) ** 2 - 1))]
    return ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", *rest, "opacity", "scale_0", "scale_1",
            "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


@pytest.mark.parametrize("degree", [0, 3])
def test_file_has_the_original_layout_and_reads_back(tmp_path, degree):
    splats = random_splats(np.random.default_rng(degree), 20, degree)
    path = tmp_path / "splats.ply"
    splat_file.write_splats(path, splats)

    ply = plyfile.PlyData.read(str(path))
    assert not ply.text and ply.byte_order == "<"
    assert [e.name for e in ply.elements] == ["vertex"]
    vertex = ply["vertex"]
    assert [p.name for p in vertex.properties] == original_names(degree)
    assert all(vertex[p.name].dtype == np.dtype("<f4") for p in vertex.properties)
    assert vertex.count == 20
    np.testing.assert_array_equal(np.stack([vertex[c] for c in "xyz"], -1), splats.means)
    np.testing.assert_array_equal(np.stack([vertex[f"n{c}"] for c in "xyz"], -1), 0)
    np.testing.assert_array_equal(vertex["opacity"], splats.opacity_logits)
    np.testing.assert_array_equal(np.stack([vertex[f"scale_{i}"] for i in range(3)], -1), splats.log_scales)
    np.testing.assert_array_equal(np.stack([vertex[f"rot_{i}"] for i in range(4)], -1), splats.quats)
    k = (degree + 1) ** 2
    for c in range(3):  # channel-major: f_rest_{c (K - 1) + k - 1} is coefficient k of channel c
        np.testing.assert_array_equal(vertex[f"f_dc_{c}"], splats.sh[:, 0, c])
        for j in range(1, k):
            np.testing.assert_array_equal(vertex[f"f_rest_{c * (k - 1) + j - 1}"], splats.sh[:, j, c])

    read = splat_file.read_splats(path)
    for got, want in zip(read, splats):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
    assert read.sh_degree == degree


def test_reads_a_file_in_the_original_layout_with_properties_in_another_order(tmp_path):
    splats = random_splats(np.random.default_rng(1), 5, 2)
    path = tmp_path / "splats.ply"
    splat_file.write_splats(path, splats)
    vertex = plyfile.PlyData.read(str(path))["vertex"]
    names = [n for n in original_names(2) if n[0] != "n"][::-1]  # no normals, reversed
    data = np.empty(5, dtype=[(n, "<f8") for n in names])
    for n in names:
        data[n] = vertex[n]
    plyfile.PlyData([plyfile.PlyElement.describe(data, "vertex")]).write(str(path))
    for got, want in zip(splat_file.read_splats(path), splats):
        np.testing.assert_array_equal(got, want)


def test_bad_files_are_refused_naming_the_file_and_what_is_missing(tmp_path):
    path = tmp_path / "bad.ply"
    names = [n for n in original_names(0) if n not in ("opacity", "scale_1")]
    plyfile.PlyData([plyfile.PlyElement.describe(np.zeros(3, dtype=[(n, "<f4") for n in names]), "vertex")]
                    ).write(str(path))
    with pytest.raises(ConfigError, match=r"bad\.ply lacks the vertex properties opacity, scale_1"):
        splat_file.read_splats(path)

    names = original_names(1) + ["f_rest_9"]  # 10 rest coefficients: no SH degree
    plyfile.PlyData([plyfile.PlyElement.describe(np.zeros(3, dtype=[(n, "<f4") for n in names]), "vertex")]
                    ).write(str(path))
    with pytest.raises(ConfigError, match=r"bad\.ply has 10 f_rest_ properties; expected 0, 9, 24 or 45"):
        splat_file.read_splats(path)

    path.write_text("not a ply")
    with pytest.raises(ConfigError, match=r"bad\.ply cannot be read as a PLY"):
        splat_file.read_splats(path)
    with pytest.raises(ConfigError, match=r"missing\.ply: no such file"):
        splat_file.read_splats(tmp_path / "missing.ply")


@pytest.mark.parametrize("reflect", [False, True])
def test_transform_moves_covariances_and_colours_as_a_similarity(reflect):
    rng = np.random.default_rng(2)
    splats = random_splats(rng, 30, 3)
    rotation = Rotation.random(random_state=3).as_matrix() @ (FLIP if reflect else np.eye(3))
    scale, translation = 2.5, np.array([0.3, -1.0, 4.0])
    moved = splat_file.transform_splats(splats, similarity(rotation, scale, translation))

    np.testing.assert_allclose(moved.means, scale * splats.means @ rotation.T + translation, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(moved.quats, axis=-1), 1, atol=1e-6)
    before = np.asarray(gaussians.covariances(splats.log_scales, splats.quats), np.float64)
    after = np.asarray(gaussians.covariances(moved.log_scales, moved.quats))
    np.testing.assert_allclose(after, scale ** 2 * rotation @ before @ rotation.T, atol=1e-6)
    np.testing.assert_array_equal(moved.opacity_logits, splats.opacity_logits)

    dirs = unit(rng, 30)  # one direction per splat, and the same seen in the new frame
    colors = np.asarray(gaussians.sh_colors(splats.sh, dirs))
    assert (colors > 0).mean() > 0.5  # not clamped away
    np.testing.assert_allclose(gaussians.sh_colors(moved.sh, dirs @ rotation.T), colors, atol=1e-5)


def test_transform_then_its_inverse_is_the_identity():
    splats = random_splats(np.random.default_rng(4), 30, 3)
    transform = similarity(Rotation.random(random_state=5).as_matrix() @ FLIP, 0.4, [1.0, 2.0, -3.0])
    back = splat_file.transform_splats(splat_file.transform_splats(splats, transform), np.linalg.inv(transform))
    np.testing.assert_allclose(back.means, splats.means, atol=1e-5)
    np.testing.assert_allclose(back.log_scales, splats.log_scales, atol=1e-5)
    unit_quats = splats.quats / np.linalg.norm(splats.quats, axis=-1, keepdims=True)
    signs = np.sign(np.sum(back.quats * unit_quats, axis=-1, keepdims=True))  # q and -q are one rotation
    np.testing.assert_allclose(signs * back.quats, unit_quats, atol=1e-5)
    np.testing.assert_allclose(back.sh, splats.sh, atol=1e-5)


def test_transform_refuses_what_is_not_a_similarity():
    splats = random_splats(np.random.default_rng(6), 2, 1)
    with pytest.raises(ValueError, match="not a similarity"):
        splat_file.transform_splats(splats, np.diag([1.0, 2.0, 1.0, 1.0]))


def test_capture_transform_undoes_the_loaders_normalisation():
    transform = similarity(Rotation.random(random_state=7).as_matrix(), 0.2, [1.0, 0.0, -2.0])
    applied = similarity(Rotation.random(random_state=8).as_matrix(), 1.0, [0.0, 3.0, 0.0])
    split = Split(images=None, camtoworlds=np.zeros((0, 4, 4)), intrinsics=None, height=1, width=1, files=[],
                  transform=transform, applied_transform=applied)
    np.testing.assert_allclose(splat_file.capture_transform(split) @ transform, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(splat_file.capture_transform(split, original=True) @ transform @ applied, np.eye(4),
                               atol=1e-12)
    assert splat_file.capture_transform(split._replace(transform=None)) is None
