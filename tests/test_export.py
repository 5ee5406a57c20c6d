"""export.py: point clouds and meshes against the demo scene's exact geometry, and files that load back."""

import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import trimesh

from configs import demo_grid
from helpers import ROOT, assert_one_line_error
from mipnerf import datasets
from mipnerf.cameras import camera, orbits
from mipnerf.commands import export, train
from mipnerf.datasets.builtin import demo
from mipnerf.export import mesh, point_cloud

SCENE_SIZE = 2 * demo.SCENE_RADIUS  # the diameter of the sphere that bounds the demo's shapes


def surface_distance(points: np.ndarray) -> np.ndarray:
    """[P] distance from each point to the nearest surface of the demo scene (disc, spheres, box)."""
    p = np.asarray(points, np.float64)
    outside_disc = np.maximum(np.linalg.norm(p[:, :2], axis=-1) - demo.DISC_RADIUS, 0.0)
    disc = np.hypot(p[:, 2] - demo.DISC_Z, outside_disc)
    big = np.abs(np.linalg.norm(p - demo.BIG_CENTRE, axis=-1) - demo.BIG_RADIUS)
    small = np.abs(np.linalg.norm(p - demo.SMALL_CENTRE, axis=-1) - demo.SMALL_RADIUS)
    lo, hi = demo.BOX_LO.astype(np.float64), demo.BOX_HI.astype(np.float64)
    q = np.abs(p - (lo + hi) / 2) - (hi - lo) / 2
    box = np.abs(np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(np.max(q, axis=-1), 0.0))
    return np.min([disc, big, small, box], axis=0)


def test_median_depth_matches_a_brute_force_search():
    rng = np.random.default_rng(0)
    weights = rng.uniform(0, 1, (50, 12)) * (rng.uniform(size=(50, 12)) < 0.6)
    weights[:, 3] += 0.01  # no ray without weight
    t = np.cumsum(rng.uniform(0.1, 1.0, (50, 13)), axis=-1)
    got = np.asarray(point_cloud.median_depth(jnp.asarray(weights), jnp.asarray(t)))
    for w, ti, m in zip(weights, t, got):
        # The weight is spread evenly over each interval: the median is where half the mass lies before.
        grid = np.linspace(ti[0], ti[-1], 200001)
        density = (w / np.diff(ti))[np.clip(np.searchsorted(ti, grid, side="right") - 1, 0, len(w) - 1)]
        mass = np.cumsum(density) * (grid[1] - grid[0])
        assert m == pytest.approx(grid[np.searchsorted(mass, 0.5 * w.sum())], abs=1e-3)


def test_the_surface_of_a_sphere_lies_on_it_to_a_tenth_of_a_cell():
    """Marching cubes on a density that falls linearly with the distance from a sphere's centre
    (off the grid's centre, which is off the origin): the level's sphere, radius 0.8, inside the
    cube `center` ± 1.3 sampled at the centres of 48^3 cells. Every vertex lies on it to a tenth of
    a cell (linear interpolation of the distance along cell edges errs by far less), the vertices
    surround its centre, and the normals point out of it."""
    resolution, half_width, center = 48, 1.3, np.array([0.3, -0.2, 0.5])
    sphere_centre, radius = center + np.array([0.11, -0.07, 0.05]), 0.8
    spacing = 2 * half_width / resolution
    axis = (np.arange(resolution) + 0.5) * spacing - half_width  # cell centres, as mesh.density_grid samples them
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1) + center
    density = 20.0 * (1.0 - np.linalg.norm(points - sphere_centre, axis=-1))
    vertices, faces, normals = mesh.surface(density, 20.0 * (1.0 - radius), center, half_width)
    assert len(vertices) > 1000 and faces.max() < len(vertices)
    offset = vertices - sphere_centre
    distance = np.linalg.norm(offset, axis=-1)
    assert np.max(np.abs(distance - radius)) < 0.1 * spacing
    np.testing.assert_allclose(vertices.mean(axis=0), sphere_centre, atol=0.1 * spacing)
    outward = np.sum(normals * offset, axis=-1) / (np.linalg.norm(normals, axis=-1) * distance)
    assert outward.min() > 0.99


def test_the_camera_chosen_for_a_vertex_sees_it():
    """Two cameras on +x and -x looking at the origin: a vertex on the +x side facing +x takes the
    +x camera even when the other is nearer; one facing away from both takes none."""
    c2ws = np.stack([orbits.look_at(np.array([4.0, 0, 0])), orbits.look_at(np.array([-2.0, 0, 0]))])
    split = datasets.Split(images=np.zeros((2, 40, 40, 3), np.uint8), camtoworlds=c2ws.astype(np.float32),
                           intrinsics=camera.Intrinsics.pinhole(40.0, 40, 40, count=2), height=40, width=40,
                           files=["a", "b"])
    vertices = np.array([[0.5, 0, 0], [0.5, 0, 0], [0.0, 0, 0], [0.0, 30.0, 0]])
    normals = np.array([[1.0, 0, 0], [-1.0, 0, 0], [0, 0, 1.0], [1.0, 0, 0]])
    np.testing.assert_array_equal(mesh.choose_cameras(vertices, normals, split), [0, 1, -1, -1])


@pytest.fixture(scope="module")
def trained_demo(tmp_path_factory):
    """The demo scene trained for the demo's 1000 steps, with hash grids (configs/demo_grid.py:
    about 90 s on 2 cores, a third of the MLP's time to the same quality)."""
    config = demo_grid.get_config()
    config.exp_dir = str(tmp_path_factory.mktemp("demo_grid"))
    config.val_every = 0
    train.train(config, log=lambda s: None)
    return config


def big_sphere_checks(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which points [P, 3] lie on the large sphere's red checks and which on its yellow ones, away
    from the checks' borders ([P] bool each), and the colour [P, 3] the demo renders at each: its
    check's albedo, red (0.85, 0.15, 0.1) or yellow (0.98, 0.8, 0.15), under the scene's light
    (`demo._shade`: ambient, Lambert and shadows), the same from every view."""
    offset = points - demo.BIG_CENTRE
    radius = np.linalg.norm(offset, axis=-1)
    on_sphere = np.abs(radius - demo.BIG_RADIUS) < 0.02 * SCENE_SIZE
    unit = offset / radius[:, None]
    lon = np.arctan2(unit[:, 1], unit[:, 0]) / (2 * np.pi) * 12.0
    lat = np.arccos(np.clip(unit[:, 2], -1, 1)) / np.pi * 6.0
    inside = on_sphere & (np.abs(lon - np.round(lon)) > 0.2) & (np.abs(lat - np.round(lat)) > 0.2)
    surface = (demo.BIG_CENTRE[:, None] + demo.BIG_RADIUS * unit.T).astype(np.float32)
    red = demo._surface(1, surface)[1][1] < 0.5
    return inside & red, inside & ~red, demo._shade(surface, np.ones(len(points), np.int64)).T


def assert_coloured_as_rendered(colors: np.ndarray, red: np.ndarray, yellow: np.ndarray, shaded: np.ndarray) -> None:
    """RGB colours [P, 3] in [0, 1] on the red and on the yellow checks (`big_sphere_checks`) are
    the rendered ones: on each check, the median of each channel's difference is under 0.1, where
    swapping red and blue errs by over 0.3. Red is red in any light: green and blue under half
    of it (0.18 and 0.12 in the albedo)."""
    for check in (red, yellow):
        assert check.sum() > 100
        assert np.all(np.median(np.abs(colors[check] - shaded[check]), axis=0) < 0.1)
    assert np.all(np.median(colors[red][:, 1:] / colors[red][:, :1], axis=0) < 0.5)


def test_the_point_cloud_lies_on_the_scene_and_the_red_checks_are_red(trained_demo):
    config = trained_demo.copy_and_resolve_references()
    config.export, config.export_views, config.export_points = "pointcloud", 12, 20_000
    path, = export.export(config, log=lambda s: None)
    cloud = trimesh.load(path)
    assert isinstance(cloud, trimesh.PointCloud) and 5_000 <= len(cloud.vertices) <= 20_000
    points, colors = np.asarray(cloud.vertices), np.asarray(cloud.colors)[:, :3] / 255.0
    assert np.median(surface_distance(points)) < 0.02 * SCENE_SIZE
    # Points on the large sphere, away from its checks' borders, coloured as the checks are.
    red, yellow, shaded = big_sphere_checks(points)
    red_points, yellow_points = colors[red], colors[yellow]
    assert len(red_points) > 100 and len(yellow_points) > 100
    assert np.median(red_points[:, 0] - red_points[:, 1]) > 0.3  # red: much more red than green
    assert np.median(yellow_points[:, 1]) > np.median(red_points[:, 1]) + 0.3  # yellow: green too
    assert_coloured_as_rendered(colors, red, yellow, shaded)


def test_the_mesh_lies_on_the_scene_and_loads_as_ply_and_obj(trained_demo):
    config = trained_demo.copy_and_resolve_references()
    config.export, config.export_resolution, config.export_obj = "mesh", 96, True
    ply, obj = export.export(config, log=lambda s: None)
    for path in (ply, obj):
        loaded = trimesh.load(path, process=False)
        assert isinstance(loaded, trimesh.Trimesh) and len(loaded.faces) > 5_000
        assert np.median(surface_distance(loaded.vertices)) < 0.02 * SCENE_SIZE
    loaded = trimesh.load(ply, process=False)
    colors = np.asarray(loaded.visual.vertex_colors)[:, :3]
    assert colors.std() > 20  # coloured by the scene, not one grey
    # Vertices on the large sphere's checks that a training camera sees (the others are grey) are
    # coloured as rendered, in RGB order. Most face away from the light: their red is about 0.35.
    red, yellow, shaded = big_sphere_checks(np.asarray(loaded.vertices))
    seen = np.any(colors != 128, axis=-1)
    assert_coloured_as_rendered(colors / 255.0, red & seen, yellow & seen, shaded)


def run_export(*flags):
    return subprocess.run([sys.executable, "export.py", *flags], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_export_py_writes_a_point_cloud_of_a_trained_run_and_refuses_bad_levels(trained_run):
    result = run_export(f"--config.exp_dir={trained_run}", "--config.export_views=3")
    assert result.returncode == 0, result.stderr
    cloud = trimesh.load(trained_run / "export" / "pointcloud.ply")
    assert len(cloud.vertices) > 0 and np.all(np.abs(cloud.vertices) < 4.0)
    result = run_export(f"--config.exp_dir={trained_run}", "--config.export=mesh", "--config.export_resolution=16",
                        "--config.export_level=1e9")
    assert_one_line_error(result, "config.export_level=1000000000.0", "no surface")
    assert_one_line_error(run_export(f"--config.exp_dir={trained_run}", "--config.export=voxels"), "config.export")
