"""COLMAP models on disk, the capture loader, camera models with distortion, and the canonical frame."""

import numpy as np
import pytest

import captures
from mipnerf.cameras import camera, conventions, orbits
from mipnerf.datasets import colmap, colmap_model as cm, scene_frame
from mipnerf.errors import ConfigError, DatasetError


def assert_models_equal(a: cm.Model, b: cm.Model) -> None:
    assert a.cameras.keys() == b.cameras.keys() and a.images.keys() == b.images.keys()
    for k, cam in a.cameras.items():
        other = b.cameras[k]
        assert (cam.id, cam.model, cam.width, cam.height) == (other.id, other.model, other.width, other.height)
        np.testing.assert_array_equal(cam.params, other.params)
    for k, im in a.images.items():
        other = b.images[k]
        assert (im.id, im.camera_id, im.name) == (other.id, other.camera_id, other.name)
        for field in ("qvec", "tvec", "xys", "point3d_ids"):
            np.testing.assert_array_equal(getattr(im, field), getattr(other, field))
    for field in ("ids", "xyz", "rgb", "errors"):
        np.testing.assert_array_equal(getattr(a.points, field), getattr(b.points, field))
    assert len(a.points.tracks) == len(b.points.tracks)
    for ta, tb in zip(a.points.tracks, b.points.tracks):
        np.testing.assert_array_equal(ta, tb)


def test_binary_and_text_models_read_the_same(tmp_path):
    written = captures.write_capture(tmp_path / "bin", models=tuple(captures.CAMERAS))["model"]
    cm.write_model(written, tmp_path / "txt", binary=False)
    from_bin, from_txt = cm.read_model(tmp_path / "bin" / "sparse" / "0"), cm.read_model(tmp_path / "txt")
    assert_models_equal(from_bin, written)
    assert_models_equal(from_txt, from_bin)
    assert {c.model for c in from_txt.cameras.values()} == set(captures.CAMERAS)
    assert sum(len(t) for t in from_bin.points.tracks) == sum(len(im.xys) for im in from_bin.images.values()) > 100


def test_binary_model_is_preferred_to_text(tmp_path):
    model = captures.write_capture(tmp_path, count=4)["model"]
    sparse = tmp_path / "sparse" / "0"
    text = model._replace(cameras={1: model.cameras[1]._replace(params=np.array([1.0, 2.0, 3.0, 4.0]))})
    cm.write_model(text, sparse, binary=False)
    np.testing.assert_array_equal(cm.read_model(sparse).cameras[1].params, model.cameras[1].params)


def test_quaternions_round_trip():
    rng = np.random.default_rng(0)
    for q in rng.normal(size=(20, 4)):
        q = q / np.linalg.norm(q) * np.sign(q[0])
        r = conventions.quaternion_to_matrix(q)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(conventions.matrix_to_quaternion(r), q, atol=1e-12)
    # A half turn about x has w = 0.
    np.testing.assert_allclose(conventions.matrix_to_quaternion(np.diag([1.0, -1.0, -1.0])), [0, 1, 0, 0], atol=1e-12)


@pytest.mark.parametrize("model", list(captures.CAMERAS))
def test_rays_of_each_camera_model_hit_their_projections(tmp_path, model):
    """Points along the loader's ray through a pixel centre project back onto that centre under the model."""
    capture = captures.write_capture(tmp_path, count=9, models=(model,), factors=())
    split = colmap.load_split(tmp_path, "train", llffhold=0)
    rays = camera.generate_rays(split.camtoworlds, split.intrinsics, split.height, split.width, 0.0, 1.0)
    params = capture["model"].cameras[1].params
    transform = split.transform
    for n in (0, 4):
        world_c2w = capture["poses"][n + 0]  # llffhold=0: the train split is every image, in name order
        rotation = (world_c2w[:3, :3] @ captures.OPENCV_TO_OPENGL).T
        # Every 5th pixel, at two distances along its ray; back in world units for the reference model.
        o, d = rays.origins[n, ::5, ::5].reshape(-1, 3), rays.directions[n, ::5, ::5].reshape(-1, 3)
        j, i = np.mgrid[0:captures.HEIGHT:5, 0:captures.WIDTH:5]
        centres = np.stack([i.ravel() + 0.5, j.ravel() + 0.5], -1)
        for t in (0.3, 1.5):
            world = scene_frame.transform_points(np.linalg.inv(transform), o + t * d.astype(np.float64))
            uv = captures.reference_project(model, params, (world - world_c2w[:3, 3]) @ rotation.T)
            np.testing.assert_allclose(uv, centres, atol=1e-4)
    # The cone radius is the distance to the next pixel's direction: 1/f for a pinhole at the centre.
    if model in ("PINHOLE", "SIMPLE_PINHOLE"):
        centre = rays.radii[0, captures.HEIGHT // 2, captures.WIDTH // 2, 0]
        assert centre == pytest.approx(2 / np.sqrt(12) / params[0], rel=1e-5)


def test_fisheye_rays_reach_past_ninety_degrees():
    cam = camera.Intrinsics(np.array(10.0), np.array(10.0), np.array(0.0), np.array(0.0), np.zeros(6), np.array(True))
    dirs = camera.image_point_directions(np.array([0.5 * np.pi * 10 * 1.2]), np.array([0.0]), cam)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1.0)
    assert dirs[0, 2] > 0  # OpenGL -Z is forward: this ray looks backwards, 108 degrees off axis
    uv = camera.project(dirs, np.eye(4), cam)
    np.testing.assert_allclose(uv, [[0.5 * np.pi * 12, 0.0]], atol=1e-9)


def test_colmap_and_poses_bounds_give_the_same_cameras(tmp_path):
    a = captures.write_capture(tmp_path / "colmap", poses_bounds=False)
    captures.write_capture(tmp_path / "llff", poses_bounds=True, sparse=False)
    for split in ("train", "test"):
        from_colmap = colmap.load_split(tmp_path / "colmap", split)
        from_llff = colmap.load_split(tmp_path / "llff", split)
        np.testing.assert_allclose(from_colmap.camtoworlds, from_llff.camtoworlds, atol=1e-5)
        np.testing.assert_allclose(from_colmap.intrinsics.fx, from_llff.intrinsics.fx)
        np.testing.assert_array_equal(from_colmap.images, from_llff.images)
    # The COLMAP pose's conversion itself: the camera sits at its centre and looks along -Z at its target.
    world = conventions.colmap_to_camtoworld(*captures.world_to_camera(a["poses"][3]))
    np.testing.assert_allclose(world, a["poses"][3], atol=1e-12)


def test_llff_bounds_are_kept_and_scaled(tmp_path):
    captures.write_capture(tmp_path, poses_bounds=True, sparse=False)
    split = colmap.load_split(tmp_path, "train", forward_facing=True)
    scale = scene_frame.similarity_scale(split.transform)
    np.testing.assert_allclose(split.bounds, np.array([[1.0, 9.0]] * len(split.bounds)) * scale, rtol=1e-6)
    assert split.bounds.min() == pytest.approx(1 / 0.75, rel=1e-6)


def test_split_is_every_eighth_image_by_name(tmp_path):
    captures.write_capture(tmp_path, count=17)
    names = lambda split: [p.rsplit("/", 1)[-1] for p in split.files]
    test = colmap.load_split(tmp_path, "test")
    assert names(test) == ["img_000.png", "img_008.png", "img_016.png"]
    assert names(colmap.load_split(tmp_path, "val")) == names(test)
    train = colmap.load_split(tmp_path, "train")
    assert len(train.files) == 14 and "img_001.png" in names(train) and "img_008.png" not in names(train)
    assert len(colmap.load_split(tmp_path, "train", llffhold=0).files) == 17
    with pytest.raises(ConfigError, match="llffhold=0"):
        colmap.load_split(tmp_path, "test", llffhold=0)


def test_360_normalisation_and_the_saved_transform(tmp_path):
    capture = captures.write_capture(tmp_path, count=12)
    train, test = colmap.load_split(tmp_path, "train"), colmap.load_split(tmp_path, "test")
    np.testing.assert_array_equal(train.transform, test.transform)
    centres = np.concatenate([train.camtoworlds, test.camtoworlds])[:, :3, 3]
    assert np.all(np.abs(centres) <= 1 + 1e-6) and np.max(np.abs(centres)) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(centres.mean(axis=0), 0.0, atol=1e-6)
    # The ring lies in the xy plane, the cameras' up is +z and the scene's up (world's +z) too.
    assert np.ptp(centres[:, 2]) < 0.2 * np.ptp(centres[:, 0])
    assert np.all(train.camtoworlds[:, 2, 1] > 0.8)
    # The cameras' heights vary by +-0.2 over a ring of radius 3, which tilts their best-fit plane
    # a few degrees away from the scene's horizontal.
    scene_up = train.transform[:3, :3] @ captures.WORLD_ROTATION[:, 2]
    assert np.degrees(np.arccos(scene_up[2] / np.linalg.norm(scene_up))) < 5
    # The transform maps the world's points to where the normalised cameras see them: pixel positions
    # of the model's 2D points, downsampled by the factor.
    split = colmap.load_split(tmp_path, "train", factor=2, llffhold=0)
    points = scene_frame.transform_points(split.transform, capture["points"])
    for n, im in enumerate(sorted(capture["model"].images.values(), key=lambda im: im.name)):
        uv = camera.project(points[im.point3d_ids - 1], split.camtoworlds[n], split.intrinsics.take(n))
        np.testing.assert_allclose(uv, im.xys / 2, atol=1e-3)


def test_forward_facing_normalisation_recentres_on_the_average_pose(tmp_path):
    captures.write_capture(tmp_path, poses_bounds=True)
    split = colmap.load_split(tmp_path, "train", forward_facing=True, llffhold=0)
    average = orbits.average_pose(split.camtoworlds)
    np.testing.assert_allclose(average, np.eye(4), atol=1e-5)


def test_factor_uses_images_n_or_downsamples_with_a_note(tmp_path, capsys):
    captures.write_capture(tmp_path, count=6, factors=(2,))
    full = colmap.load_split(tmp_path, "train", llffhold=0)
    half = colmap.load_split(tmp_path, "train", factor=2, llffhold=0)
    assert half.files[0].endswith("images_2/img_000.png") and half.images.shape == (6, 16, 24, 3)
    np.testing.assert_allclose(half.intrinsics.fx, full.intrinsics.fx / 2)
    np.testing.assert_allclose(half.intrinsics.cx, full.intrinsics.cx / 2)
    # No images_4/: images/ is averaged over 4x4 blocks, and the user is told once.
    quarter = colmap.load_split(tmp_path, "train", factor=4, llffhold=0)
    again = colmap.load_split(tmp_path, "train", factor=4, llffhold=0)
    # The block mean, rounded to uint8.
    np.testing.assert_allclose(quarter.images, full.images.reshape(6, 8, 4, 12, 4, 3).mean(axis=(2, 4)), atol=0.5 + 1e-4)
    np.testing.assert_array_equal(quarter.images, again.images)
    assert capsys.readouterr().err.count("no images_4/") == 1
    # 48x32 does not divide by 5: the last columns and rows go, the principal point stays.
    fifth = colmap.load_split(tmp_path, "train", factor=5, llffhold=0)
    assert fifth.images.shape == (6, 6, 9, 3)
    np.testing.assert_allclose(fifth.images, full.images[:, :30, :45].reshape(6, 6, 5, 9, 5, 3).mean(axis=(2, 4)),
                               atol=0.5 + 1e-4)
    np.testing.assert_allclose(fifth.intrinsics.cx, full.intrinsics.cx / 5)


def test_renamed_images_n_is_matched_by_sorted_position(tmp_path):
    captures.write_capture(tmp_path, count=6, factors=(2,))
    folder = tmp_path / "images_2"
    for k, path in enumerate(sorted(folder.iterdir())):
        path.rename(folder / f"image{k:03d}.png")
    split = colmap.load_split(tmp_path, "train", factor=2, llffhold=0)
    assert [p.rsplit("/", 1)[-1] for p in split.files] == [f"image{k:03d}.png" for k in range(6)]


def test_several_cameras_keep_their_own_intrinsics(tmp_path):
    captures.write_capture(tmp_path, count=8, models=("PINHOLE", "OPENCV"))
    split = colmap.load_split(tmp_path, "train", llffhold=0)
    np.testing.assert_allclose(split.intrinsics.fx, [40.0, 40.0] * 4)
    np.testing.assert_allclose(split.intrinsics.fy, [38.0, 39.0] * 4)
    assert not np.any(split.intrinsics.distortion[0::2]) and np.all(split.intrinsics.distortion[1::2, 0] == -0.1)


def test_bounds_from_points_are_depth_percentiles(tmp_path):
    capture = captures.write_capture(tmp_path, count=8)
    split = colmap.load_split(tmp_path, "train", llffhold=0)
    im = capture["model"].images[3]
    depths = (capture["points"][im.point3d_ids - 1] @ conventions.quaternion_to_matrix(im.qvec).T + im.tvec)[:, 2]
    scale = scene_frame.similarity_scale(split.transform)
    np.testing.assert_allclose(split.bounds[2], np.percentile(depths, [0.1, 99.9]) * scale, rtol=1e-5)


def test_an_image_that_sees_no_3d_point_gets_the_widest_bounds_of_the_others(tmp_path):
    capture = captures.write_capture(tmp_path, count=6)
    blind, images = 4, dict(capture["model"].images)
    assert len(images[blind].xys) > 0  # it keeps its 2D points; none of them has a 3D point (id -1)
    images[blind] = images[blind]._replace(point3d_ids=np.full_like(images[blind].point3d_ids, -1))
    cm.write_model(capture["model"]._replace(images=images), tmp_path / "sparse" / "0")
    bounds = colmap.read_frames(tmp_path).bounds  # rows in name order: image id k is row k - 1
    seen = [k for k in sorted(images) if k != blind]
    depths = [(capture["points"][images[k].point3d_ids - 1] @ conventions.quaternion_to_matrix(images[k].qvec).T
               + images[k].tvec)[:, 2] for k in seen]
    others = np.array([np.percentile(d, [0.1, 99.9]) for d in depths])
    np.testing.assert_allclose(bounds[np.array(seen) - 1], others, rtol=1e-6)
    np.testing.assert_allclose(bounds[blind - 1], [others[:, 0].min(), others[:, 1].max()], rtol=1e-6)


def test_truncated_binary_and_malformed_text_name_the_file_and_line(tmp_path):
    captures.write_capture(tmp_path / "a", count=4)
    images = tmp_path / "a" / "sparse" / "0" / "images.bin"
    images.write_bytes(images.read_bytes()[:-7])
    with pytest.raises(DatasetError, match="images.bin is truncated"):
        colmap.load_split(tmp_path / "a", "train", llffhold=0)
    captures.write_capture(tmp_path / "b", count=4, binary=False)
    cameras = tmp_path / "b" / "sparse" / "0" / "cameras.txt"
    lines = cameras.read_text().splitlines()
    lines[2] = lines[2].replace("PINHOLE 48", "PINHOLE forty-eight")
    cameras.write_text("\n".join(lines))
    with pytest.raises(DatasetError, match="cameras.txt: line 3"):
        colmap.load_split(tmp_path / "b", "train", llffhold=0)
