"""export.py: a trained run's geometry as files for other tools, a coloured point cloud or a mesh (PLY, OBJ),
or its splats: 3D Gaussians distilled from it that render in real time (PLY in 3DGS's layout)."""

import pathlib
import shutil

import numpy as np

from mipnerf import datasets
from mipnerf.cameras import orbits
from mipnerf.commands import run_config
from mipnerf.commands.config_checks import check_config
from mipnerf.errors import ConfigError
from mipnerf.export import distill, mesh, point_cloud
from mipnerf.render import rendering, splat_file


def export_box(train: datasets.Split, config) -> tuple[np.ndarray, float]:
    """The cube exported: (centre [3], half-width). Centred on the point the cameras look at
    (`orbits.scene_center`); `config.export_bound` gives the half-width, else the region the cameras
    look at: their median distance from the centre, less `near` for a bounded scene (what lies
    within every camera's depth range)."""
    orbit = orbits.camera_orbit(train.camtoworlds)
    if config.export_bound > 0:
        return orbit.center, float(config.export_bound)
    distance = float(np.median(orbit.distances))
    if not config.contraction and distance - config.near > 0.1 * distance:
        distance -= config.near
    return orbit.center, distance


def export(config, explicit=None, log=print) -> list[pathlib.Path]:
    """Writes `exp_dir/export/pointcloud.ply`, or `mesh.ply` (and `mesh.obj` with `export_obj`), or
    `splats.ply` (`distill.distil`: at most `export_splats` Gaussians, in the capture's world frame
    where the run records one), from the newest whole checkpoint; the model and scene come from
    the run's config.json.

    Returns:
      The paths written.
    """
    import trimesh  # imported here: the other entry points do without it

    config = run_config.for_restore(config, explicit)
    check_config(config, explicit or ())
    if config.forward_facing:
        raise ConfigError("config.forward_facing=True: export works in the world frame, and forward-facing "
                          "scenes render in NDC; expected a bounded or unbounded (360) scene")
    renderer = rendering.load_renderer(config, log)
    model = renderer.model
    train = datasets.load_split(config, "train")
    center, half_width = export_box(train, config)
    out_dir = pathlib.Path(config.exp_dir) / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.export == "splats":
        splats = distill.distil(renderer, train, config, out_dir, log)
        path = out_dir / "splats.ply"
        to_capture = splat_file.capture_transform(train)
        splat_file.write_splats(path, splats if to_capture is None else splat_file.transform_splats(splats, to_capture))
        shutil.rmtree(out_dir / distill.CHECKPOINTS, ignore_errors=True)  # only an unfinished export resumes
        frame = "the model's frame" if to_capture is None else "the capture's frame"
        log(f"step {renderer.step}: {len(splats.means):,} splats of SH degree {splats.sh_degree} in {frame}; wrote {path}")
        return [path]
    box = f"the cube {np.round(center, 3).tolist()} ± {half_width:.3g}"
    if config.export == "pointcloud":
        count = len(train.camtoworlds) if config.export_views == 0 else min(config.export_views, len(train.camtoworlds))
        views = np.unique(np.linspace(0, len(train.camtoworlds) - 1, count).round().astype(int))
        points, colors = point_cloud.export_points(renderer, point_cloud.make_points_fn(config, model), train, config,
                                                   views, center, half_width)
        path = out_dir / "pointcloud.ply"
        trimesh.PointCloud(points, colors=colors).export(path)
        log(f"step {renderer.step}: {len(points):,} points from {len(views)} training views inside {box}; wrote {path}")
        return [path]
    density = mesh.density_grid(renderer, model, center, half_width, config.export_resolution)
    try:
        vertices, faces, normals = mesh.surface(density, config.export_level, center, half_width)
    except ValueError:
        raise ConfigError(f"config.export_level={config.export_level}: no surface at that density inside {box} "
                          f"(densities span {density.min():.3g} to {density.max():.3g}); expected a level "
                          f"between them") from None
    spacing = 2 * half_width / config.export_resolution
    colors = mesh.vertex_colors(renderer, model, vertices, normals, train, config, depth=2 * spacing)
    result = trimesh.Trimesh(vertices, faces, vertex_normals=normals, vertex_colors=colors, process=False)
    paths = [out_dir / "mesh.ply"] + ([out_dir / "mesh.obj"] if config.export_obj else [])
    for path in paths:
        result.export(path)
    log(f"step {renderer.step}: {len(vertices):,} vertices and {len(faces):,} faces at density "
        f"{config.export_level:g} on a {config.export_resolution}³ grid over {box}; wrote "
        f"{', '.join(str(p) for p in paths)}")
    return paths
