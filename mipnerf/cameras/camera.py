"""Pinhole cameras in the Blender/OpenGL convention, the cone-cast rays through their pixels, and
camera paths (orbit, spiral) around the training cameras for videos.

Convention: the camera looks down its -Z axis with +Y up and +X right; image rows grow
downward, so the y term of a pixel direction changes sign. Pixel (i, j) (column i, row j)
has its centre at (i + 0.5, j + 0.5). Camera-to-world matrices are 4x4 (or 3x4) with the
rotation in the top-left 3x3 block and the camera centre in the last column.

Rays are cast with `jax.numpy` (`cast_rays`): inside the jitted training step for the pixels it
draws, per chunk when rendering, and on the host in float64 for tests and tools. Camera paths
and projections are numpy.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mipnerf.cameras.conventions import OPENCV_TO_OPENGL_SIGNS


class Rays(NamedTuple):
    """A bundle of cone-cast rays; every field has the same leading shape `[...]`.

    origins: [..., 3] camera centres in world space.
    directions: [..., 3] directions through pixel centres, not normalised (unit z-depth).
    viewdirs: [..., 3] `directions` normalised to unit length.
    radii: [..., 1] radius of the pixel's cone at unit distance along `directions`.
    near: [..., 1] start of the ray's interval, in units of `directions`.
    far: [..., 1] end of the ray's interval, in units of `directions`.
    """

    origins: np.ndarray
    directions: np.ndarray
    viewdirs: np.ndarray
    radii: np.ndarray
    near: np.ndarray
    far: np.ndarray


def focal_from_fov(width: int, camera_angle_x: float) -> float:
    """Focal length in pixels of a camera `width` pixels wide with horizontal FOV `camera_angle_x` (radians)."""
    return 0.5 * width / np.tan(0.5 * camera_angle_x)


DISTORTION_COEFFICIENTS = 6  # the length of `Intrinsics.distortion`'s last axis


class Intrinsics(NamedTuple):
    """Cameras' intrinsics in pixels of the loaded images; every field has the leading shape [N]
    (or none, for a single camera).

    fx, fy: focal lengths; cx, cy: principal point, with pixel (i, j) centred at (i + 0.5, j + 0.5).
    distortion: [N, 6] lens distortion: (k1, k2, p1, p2, k3, k4) of the radial-tangential (OpenCV)
      model, whose radial factor is 1 + k1 r^2 + k2 r^4 + k3 r^6 + k4 r^8 (k3 as OpenCV's, k4 as
      nerfstudio's fourth radial term), or (k1, k2, k3, k4, 0, 0) of the equidistant fisheye
      model; zeros for an ideal pinhole.
    fisheye: [N] bool, which of the two models `distortion` belongs to.
    """

    fx: np.ndarray
    fy: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    distortion: np.ndarray
    fisheye: np.ndarray

    @classmethod
    def pinhole(cls, focal, width: int, height: int, count=None) -> "Intrinsics":
        """Ideal pinhole cameras with square pixels and the principal point at the image centre:
        `count` of them (fields [count]), or one (scalar fields) when `count` is None."""
        shape = () if count is None else (count,)
        full = lambda v: np.full(shape, v, np.float64)
        return cls(full(focal), full(focal), full(0.5 * width), full(0.5 * height),
                   np.zeros(shape + (DISTORTION_COEFFICIENTS,)), np.zeros(shape, bool))

    def scaled(self, factor: float) -> "Intrinsics":
        """The intrinsics of the images downsampled by `factor` (distortion is unitless and stays)."""
        return self._replace(fx=self.fx / factor, fy=self.fy / factor, cx=self.cx / factor, cy=self.cy / factor)

    def take(self, index) -> "Intrinsics":
        """The cameras at `index` (an int, a slice or an index array) of every field."""
        return Intrinsics(*(np.asarray(x)[index] for x in self))

    def without_distortion(self) -> "Intrinsics":
        """Ideal pinhole cameras with the same focal lengths and principal points."""
        return self._replace(distortion=np.zeros_like(self.distortion), fisheye=np.zeros_like(self.fisheye))


def _radial_tangential(x, y, k1, k2, p1, p2, k3, k4):
    """OpenCV's radial-tangential distortion of normalised image coordinates and its Jacobian,
    with radial terms up to r^8 (see `Intrinsics`).

    Returns:
      (xd, yd, dxd/dx, dxd/dy, dyd/dx, dyd/dy), each shaped like `x`.
    """
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * (k3 + r2 * k4)))
    d_radial = 2 * (k1 + r2 * (2 * k2 + r2 * (3 * k3 + r2 * 4 * k4)))  # d radial / d (r2) times 2
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    dxd_dx = radial + x * x * d_radial + 2 * p1 * y + 6 * p2 * x
    dxd_dy = x * y * d_radial + 2 * p1 * x + 2 * p2 * y
    dyd_dx = x * y * d_radial + 2 * p1 * x + 2 * p2 * y
    dyd_dy = radial + y * y * d_radial + 6 * p1 * y + 2 * p2 * x
    return xd, yd, dxd_dx, dxd_dy, dyd_dx, dyd_dy


def _fisheye_theta_d(theta, k1, k2, k3, k4, *unused):
    """The equidistant fisheye model's distorted angle theta_d(theta) and its derivative (the
    coefficients past k4, zero for a fisheye, are ignored)."""
    t2 = theta * theta
    poly = 1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))
    d_poly = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))
    return theta * poly, d_poly


_NEWTON_STEPS = 20


class Lens(NamedTuple):
    """Which lens models a set of cameras needs; static, it decides what compiled casting computes.

    radial: some perspective camera has non-zero distortion coefficients (Newton's method runs).
    fisheye: some camera is a fisheye (the equidistant model runs, selected per camera).
    Neither: every camera is an ideal pinhole, and casting is a few products.
    """

    radial: bool = False
    fisheye: bool = False

    @classmethod
    def of(cls, intrinsics: Intrinsics) -> "Lens":
        fisheye = np.asarray(intrinsics.fisheye, bool).reshape(-1)
        distortion = np.asarray(intrinsics.distortion).reshape(-1, DISTORTION_COEFFICIENTS)
        return cls(radial=bool(np.any(distortion[~fisheye] != 0)), fisheye=bool(fisheye.any()))


class Cameras(NamedTuple):
    """Cameras as rays are cast from them, on the host or the device; every field has the same
    leading shape [...] (none for one camera).

    camtoworlds: [..., 3, 4] (Blender/OpenGL convention); intrinsics: `Intrinsics` with fields [...];
    width, height: [...] image size in pixels; near, far: [...] bounds of every ray of the image.
    """

    camtoworlds: np.ndarray
    intrinsics: Intrinsics
    width: np.ndarray
    height: np.ndarray
    near: np.ndarray
    far: np.ndarray

    @classmethod
    def of(cls, camtoworlds, intrinsics: Intrinsics, width, height, near, far, dtype=np.float32) -> "Cameras":
        """N cameras (fields [N]) as numpy arrays of `dtype`, from matrices [N, 3 or 4, 4] and `Intrinsics` [N];
        width, height, near and far are broadcast to [N]."""
        c2w = np.asarray(camtoworlds, dtype)[:, :3, :4]
        full = lambda v, t=dtype: np.broadcast_to(np.asarray(v, t), (len(c2w),)).copy()
        return cls(c2w, Intrinsics(*(full(x) for x in intrinsics[:4]),
                                   np.broadcast_to(np.asarray(intrinsics.distortion, dtype),
                                                   (len(c2w), DISTORTION_COEFFICIENTS)).copy(),
                                   full(intrinsics.fisheye, bool)),
                   full(width, np.int32), full(height, np.int32), full(near), full(far))


def undistort(xd, yd, distortion, fisheye, lens: Lens):
    """Camera-space ray directions (OpenCV frame: +Z forward, +Y down) through distorted points.

    Inverts the lens model by Newton's method, per point, in `jax.numpy` (float32 on the device,
    float64 on the host under `jax.enable_x64`).

    Args:
      xd, yd: [...] distorted normalised image coordinates, ((u - cx) / fx, (v - cy) / fy).
      distortion: [..., 6] the coefficients; fisheye: [...] which model (see `Intrinsics`).
      lens: which models can occur (`Lens`).

    Returns:
      [..., 3] directions: with z = 1 for the perspective model; unit length for the fisheye
      model, whose rays may point sideways or backwards.
    """
    k = jnp.moveaxis(jnp.asarray(distortion), -1, 0)
    x, y = xd, yd
    if lens.radial:

        def newton(_, xy):
            x, y = xy
            fx, fy, a, b, c, d = _radial_tangential(x, y, *k)
            ex, ey = fx - xd, fy - yd
            det = a * d - b * c
            return x - (d * ex - b * ey) / det, y - (a * ey - c * ex) / det

        x, y = jax.lax.fori_loop(0, _NEWTON_STEPS, newton, (xd, yd))
    perspective = jnp.stack([x, y, jnp.ones_like(x)], axis=-1)
    if not lens.fisheye:
        return perspective
    theta_d = jnp.sqrt(xd * xd + yd * yd)

    def newton_theta(_, theta):
        value, slope = _fisheye_theta_d(theta, *k)
        return jnp.clip(theta - (value - theta_d) / slope, 0.0, jnp.pi)

    theta = jax.lax.fori_loop(0, _NEWTON_STEPS, newton_theta, theta_d)
    # sin(theta) / theta_d scales the distorted point onto the unit sphere; 1 at the centre.
    safe = jnp.where(theta_d > 1e-12, theta_d, 1.0)
    scale = jnp.where(theta_d > 1e-12, jnp.sin(theta) / safe, 1.0)
    fish = jnp.stack([xd * scale, yd * scale, jnp.cos(theta)], axis=-1)
    return jnp.where(jnp.asarray(fisheye)[..., None], fish, perspective)


def camera_directions(u, v, intrinsics: Intrinsics, lens: Lens):
    """Camera-space directions (Blender/OpenGL frame) through continuous pixel positions.

    Args:
      u, v: [...] column and row positions; pixel (i, j) has its centre at (i + 0.5, j + 0.5).
      intrinsics: fields broadcastable against `u`.

    Returns:
      [..., 3], with z = -1 for perspective cameras and unit length for fisheye ones.
    """
    xd = (u - intrinsics.cx) / intrinsics.fx
    yd = (v - intrinsics.cy) / intrinsics.fy
    opencv = undistort(xd, yd, intrinsics.distortion, intrinsics.fisheye, lens)
    return opencv * jnp.asarray(OPENCV_TO_OPENGL_SIGNS, opencv.dtype)


def to_ndc(origins, directions, fx, fy, width, height, near: float = 1.0):
    """Rays of a forward-facing scene in normalised device coordinates (NeRF, appendix C).

    The scene lies along -z of the frame (the average camera's); each ray is first moved to
    the plane z = -near, then mapped so that the frustum z in [-near, -inf) becomes [-1, 1]:
    t in [0, 1] along the returned direction covers that whole depth range.

    Args:
      origins, directions: [..., 3] rays in the forward-facing frame.
      fx, fy, width, height: [...] the cameras' focal lengths and image sizes (the principal
        point is taken at the image centre).

    Returns:
      (origins, directions) [..., 3] in NDC.
    """
    t = -(near + origins[..., 2]) / directions[..., 2]
    o = origins + t[..., None] * directions
    ox, oy, oz = o[..., 0], o[..., 1], o[..., 2]
    dx, dy, dz = directions[..., 0], directions[..., 1], directions[..., 2]
    sx, sy = 2 * fx / width, 2 * fy / height
    ndc_o = jnp.stack([-sx * ox / oz, -sy * oy / oz, 1 + 2 * near / oz], axis=-1)
    ndc_d = jnp.stack([-sx * (dx / dz - ox / oz), -sy * (dy / dz - oy / oz), -2 * near / oz], axis=-1)
    return ndc_o, ndc_d


def cast_rays(cameras: Cameras, u, v, lens: Lens, ndc: bool = False) -> Rays:
    """The cone-cast rays through pixel positions: the one implementation of ray casting, used by
    the training step (per drawn pixel), rendering (per chunk) and `generate_rays` (whole images).

    Args:
      cameras: `Cameras` with fields broadcastable against `u` (one camera, or one per ray).
      u, v: [...] continuous pixel positions (pixel centres at i + 0.5).
      lens: which lens models occur among `cameras`.
      ndc: rays of a forward-facing scene in normalised device coordinates (`to_ndc`), with
        `radii` the distance between neighbouring pixels' NDC origins (a cylinder's radius);
        `viewdirs` stay the world-space view directions.

    Returns:
      `Rays` with fields [..., C], in the cameras' float dtype.
    """
    cam = cameras.intrinsics
    dirs = camera_directions(u, v, cam, lens)
    rotation, centre = cameras.camtoworlds[..., :3, :3], cameras.camtoworlds[..., :3, 3]
    to_world = lambda d: jnp.einsum("...ij,...j->...i", rotation, d)
    directions = to_world(dirs)
    viewdirs = directions / jnp.linalg.norm(directions, axis=-1, keepdims=True)
    # mip-NeRF: the cone's radius at unit distance is the distance to the neighbouring pixel's
    # direction, scaled by 2/sqrt(12) so that the cone's cross-section has the variance of the
    # pixel's square footprint. For an ideal pinhole that distance is exactly 1 / fx.
    ideal = not (lens.radial or lens.fisheye)
    next_dirs = None if ideal and not ndc else camera_directions(u + 1.0, v, cam, lens)
    centres = jnp.broadcast_to(centre, directions.shape)
    origins = centres
    if ndc:
        size = (cam.fx, cam.fy, cameras.width.astype(directions.dtype), cameras.height.astype(directions.dtype))
        origins, directions = to_ndc(centres, directions, *size)
        dx = jnp.linalg.norm(origins - to_ndc(centres, to_world(next_dirs), *size)[0], axis=-1)
    elif ideal:
        dx = jnp.broadcast_to(1.0 / cam.fx, directions.shape[:-1])
    else:
        dx = jnp.linalg.norm(dirs - next_dirs, axis=-1)
    bound = lambda b: jnp.broadcast_to(b, directions.shape[:-1])[..., None]
    return Rays(origins, directions, viewdirs, (dx * (2.0 / np.sqrt(12.0)))[..., None],
                bound(cameras.near), bound(cameras.far))


def pixel_rays(cameras: Cameras, pixels, lens: Lens, ndc: bool = False) -> Rays:
    """The rays through pixels given by their row-major index in their image (`j * width + i`).

    Args:
      cameras: fields broadcastable against `pixels` [...] int32.
    """
    i, j = pixels % cameras.width, pixels // cameras.width
    dtype = cameras.intrinsics.fx.dtype
    return cast_rays(cameras, i.astype(dtype) + 0.5, j.astype(dtype) + 0.5, lens, ndc)


@functools.partial(jax.jit, static_argnames=("lens", "ndc", "height", "width"))
def _image_rays(cameras: Cameras, lens: Lens, ndc: bool, height: int, width: int) -> Rays:
    """Rays [height, width, C] of one camera (scalar fields)."""
    return pixel_rays(cameras, jnp.arange(height * width).reshape(height, width), lens, ndc)


def generate_rays(camtoworlds: np.ndarray, intrinsics: Intrinsics, height: int, width: int,
                  near: float, far: float, ndc: bool = False) -> Rays:
    """Rays through every pixel of every camera, cast on the host in float64 (`cast_rays`).

    For tests and tools; training and rendering cast their rays on the device instead.

    Args:
      camtoworlds: [N, 3 or 4, 4] camera-to-world matrices.
      intrinsics: the N cameras' `Intrinsics` (fields [N]).
      height, width: image size in pixels.
      near, far: bounds of every ray, in units of `directions` (depth along the optical axis
        for perspective cameras).
      ndc: see `cast_rays`.

    Returns:
      `Rays` whose fields have shape [N, height, width, C], float32 numpy arrays.
    """
    cameras = Cameras.of(camtoworlds, intrinsics, width, height, near, far, dtype=np.float64)
    lens = Lens.of(intrinsics)
    views = []
    with jax.enable_x64(True):
        for n in range(len(cameras.camtoworlds)):  # one camera at a time: temporaries the size of one image
            rays = _image_rays(jax.tree.map(lambda x: x[n], cameras), lens, ndc, height, width)
            views.append(jax.tree.map(lambda x: np.asarray(x, np.float32), rays))
    return Rays(*(np.stack(field) for field in zip(*views)))


def image_point_directions(u, v, intrinsics: Intrinsics) -> np.ndarray:
    """Camera-space directions (Blender/OpenGL frame) through continuous pixel positions of one
    camera, in float64 on the host (see `camera_directions`).

    Args:
      u, v: [...] column and row positions; intrinsics: one camera (scalar fields).

    Returns:
      [..., 3] float64, with z = -1 for perspective cameras and unit length for fisheye ones.
    """
    with jax.enable_x64(True):
        cam = Intrinsics(*(jnp.asarray(x, jnp.float64 if i < 5 else bool) for i, x in enumerate(intrinsics)))
        return np.asarray(camera_directions(jnp.asarray(u, jnp.float64), jnp.asarray(v, jnp.float64), cam,
                                            Lens.of(intrinsics)))


def pixel_directions(height: int, width: int, intrinsics: Intrinsics, offset: float = 0.0) -> np.ndarray:
    """Camera-space directions through the pixel centres of one camera (see `image_point_directions`).

    Args:
      offset: added to the column coordinate (1.0 gives the directions through the next pixel to the right).

    Returns:
      [height, width, 3] float64; entry [j, i] is the direction through column i, row j.
    """
    i, j = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64), indexing="xy")
    return image_point_directions(i + 0.5 + offset, j + 0.5, intrinsics)


def distort(directions: np.ndarray, distortion: np.ndarray, fisheye: bool) -> np.ndarray:
    """Distorted normalised image coordinates [..., 2] of camera-space directions [..., 3]
    (OpenCV frame, +Z forward): the forward model that `undistort` inverts."""
    x, y, z = np.moveaxis(np.asarray(directions, np.float64), -1, 0)
    k = [float(c) for c in distortion]
    if fisheye:
        r = np.sqrt(x * x + y * y)
        theta_d, _ = _fisheye_theta_d(np.arctan2(r, z), *k)
        scale = np.where(r > 1e-12, theta_d / np.where(r > 1e-12, r, 1.0), 1.0 / z)
        return np.stack([x * scale, y * scale], axis=-1)
    xd, yd = _radial_tangential(x / z, y / z, *k)[:2]
    return np.stack([xd, yd], axis=-1)


def project(points: np.ndarray, camtoworld: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Projects world points into one camera's image, through its lens distortion.

    Args:
      points: [..., 3] world-space points in front of the camera.
      camtoworld: [3 or 4, 4] camera-to-world matrix.
      intrinsics: one camera (scalar fields).

    Returns:
      [..., 2] continuous pixel coordinates (column, row); pixel (i, j) has its centre at (i + 0.5, j + 0.5).
    """
    c2w = np.asarray(camtoworld, dtype=np.float64)[:3, :4]
    p_cam = (np.asarray(points, dtype=np.float64) - c2w[:3, 3]) @ c2w[:3, :3]
    xd, yd = np.moveaxis(distort(p_cam * OPENCV_TO_OPENGL_SIGNS, intrinsics.distortion,
                                 bool(intrinsics.fisheye)), -1, 0)
    return np.stack([xd * intrinsics.fx + intrinsics.cx, yd * intrinsics.fy + intrinsics.cy], axis=-1)


def axis_angle(axis, angle: float) -> np.ndarray:
    """[3, 3] float64 rotation by `angle` radians about `axis` ([3], any length but zero; Rodrigues)."""
    x, y, z = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * k @ k


def look_at(eye: np.ndarray, target: np.ndarray = np.zeros(3), up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """Camera-to-world matrix of a camera at `eye` looking at `target`, with `up` kept upward.

    Args:
      eye, target, up: [3] world-space vectors; `up` must not be parallel to `target - eye`.

    Returns:
      [4, 4] float64 camera-to-world matrix in the Blender/OpenGL convention (looks down -Z).
    """
    eye = np.asarray(eye, dtype=np.float64)
    back = eye - np.asarray(target, dtype=np.float64)  # camera +Z points away from the target
    back /= np.linalg.norm(back)
    right = np.cross(np.asarray(up, dtype=np.float64), back)
    right /= np.linalg.norm(right)
    cam_up = np.cross(back, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, cam_up, back, eye
    return c2w


def scene_center(camtoworlds: np.ndarray) -> np.ndarray:
    """The point nearest to every camera's optical axis in least squares.

    Solves sum_i (I - d_i d_i^T) (p - o_i) = 0 for cameras at o_i looking along unit d_i; falls
    back to the origin when the axes are (nearly) parallel and the point is not defined.

    Args:
      camtoworlds: [N, 3 or 4, 4] camera-to-world matrices.

    Returns:
      [3] float64 world-space point.
    """
    c2w = np.asarray(camtoworlds, dtype=np.float64)
    origins, forward = c2w[:, :3, 3], -c2w[:, :3, 2]
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    off_axis = np.eye(3) - forward[:, :, None] * forward[:, None, :]  # [N, 3, 3]
    lhs, rhs = off_axis.sum(axis=0), np.einsum("nij,nj->i", off_axis, origins)
    if np.linalg.cond(lhs) > 1e6:
        return np.zeros(3)
    return np.linalg.solve(lhs, rhs)


def up_vector(camtoworlds: np.ndarray) -> np.ndarray:
    """The unit mean of the cameras' up (+Y) axes: the scene's vertical. [N, 3 or 4, 4] -> [3]."""
    up = np.asarray(camtoworlds, dtype=np.float64)[:, :3, 1].mean(axis=0)
    return up / np.linalg.norm(up)


class Orbit(NamedTuple):
    """Where the training cameras sit, in spherical coordinates about the scene centre.

    center: [3] the scene centre; up: [3] the unit vertical axis through it.
    east: [3] a unit horizontal direction, azimuth 0 (towards the camera farthest from the axis).
    distances: [N] the cameras' distances from the centre.
    elevations: [N] their angles above the horizontal plane through the centre, radians.
    """

    center: np.ndarray
    up: np.ndarray
    east: np.ndarray
    distances: np.ndarray
    elevations: np.ndarray


def camera_orbit(camtoworlds: np.ndarray) -> Orbit:
    """The `Orbit` of cameras [N, 3 or 4, 4]."""
    c2w = np.asarray(camtoworlds, dtype=np.float64)
    center, up = scene_center(c2w), up_vector(c2w)
    offsets = c2w[:, :3, 3] - center
    heights = offsets @ up
    horizontal = offsets - heights[:, None] * up
    spans = np.linalg.norm(horizontal, axis=-1)
    east = horizontal[np.argmax(spans)] / np.max(spans)
    return Orbit(center=center, up=up, east=east, distances=np.linalg.norm(offsets, axis=-1),
                 elevations=np.arctan2(heights, spans))


def _path_on_sphere(orbit: Orbit, azimuths: np.ndarray, elevations: np.ndarray) -> np.ndarray:
    """Cameras at the mean distance from the centre and the given angles, looking at the centre.

    Args:
      azimuths, elevations: [F] radians; azimuth turns about `orbit.up` from `orbit.east`.

    Returns:
      [F, 4, 4] camera-to-world matrices, image top towards `orbit.up`.
    """
    north = np.cross(orbit.up, orbit.east)
    directions = (np.cos(elevations)[:, None] * (np.cos(azimuths)[:, None] * orbit.east
                                                 + np.sin(azimuths)[:, None] * north)
                  + np.sin(elevations)[:, None] * orbit.up)
    eyes = orbit.center + np.mean(orbit.distances) * directions
    return np.stack([look_at(eye, orbit.center, orbit.up) for eye in eyes])


def orbit_path(camtoworlds: np.ndarray, num_frames: int) -> np.ndarray:
    """One full turn about the vertical axis through the scene centre, at the cameras' mean
    distance and mean elevation, looking at the centre.

    Args:
      camtoworlds: [N, 3 or 4, 4] the training cameras.

    Returns:
      [num_frames, 4, 4] camera-to-world matrices; the last frame leads back into the first.
    """
    orbit = camera_orbit(camtoworlds)
    azimuths = 2 * np.pi * np.arange(num_frames) / num_frames
    return _path_on_sphere(orbit, azimuths, np.full(num_frames, np.mean(orbit.elevations)))


def spiral_path(camtoworlds: np.ndarray, num_frames: int, waves: int = 2) -> np.ndarray:
    """One full turn about the scene centre at the cameras' mean distance, looking at the centre,
    while the elevation swings `waves` times about the mean elevation.

    The swing is the standard deviation of the cameras' elevations, kept inside their range.

    Args:
      camtoworlds: [N, 3 or 4, 4] the training cameras.

    Returns:
      [num_frames, 4, 4] camera-to-world matrices; the last frame leads back into the first.
    """
    orbit = camera_orbit(camtoworlds)
    mean = np.mean(orbit.elevations)
    swing = min(np.std(orbit.elevations), np.max(orbit.elevations) - mean, mean - np.min(orbit.elevations))
    azimuths = 2 * np.pi * np.arange(num_frames) / num_frames
    return _path_on_sphere(orbit, azimuths, mean + swing * np.sin(waves * azimuths))


def zoom_path(camtoworlds: np.ndarray, num_frames: int, pull: float = 4.0) -> np.ndarray:
    """A camera pulling back from the scene centre: from the cameras' mean distance to `pull`
    times it, in equal ratios per frame, at their mean elevation and the azimuth of the camera
    farthest from the vertical axis, looking at the centre. At a fixed image size, content
    shrinks: aliasing (shimmering) shows up where the encoding does not account for it.

    Returns:
      [num_frames, 4, 4] camera-to-world matrices.
    """
    orbit = camera_orbit(camtoworlds)
    elevation = np.mean(orbit.elevations)
    direction = np.cos(elevation) * orbit.east + np.sin(elevation) * orbit.up
    distances = np.mean(orbit.distances) * pull ** (np.arange(num_frames) / max(num_frames - 1, 1))
    return np.stack([look_at(orbit.center + d * direction, orbit.center, orbit.up) for d in distances])


def average_pose(camtoworlds: np.ndarray) -> np.ndarray:
    """[4, 4] camera-to-world at the cameras' mean centre, looking along their mean viewing
    direction, with the image's up as close to their mean up as orthogonality allows."""
    c2w = np.asarray(camtoworlds, np.float64)
    back = c2w[:, :3, 2].sum(axis=0)
    back /= np.linalg.norm(back)
    right = np.cross(c2w[:, :3, 1].sum(axis=0), back)
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, np.cross(back, right), back, c2w[:, :3, 3].mean(axis=0)
    return pose


def ellipse_path(camtoworlds: np.ndarray, num_frames: int) -> np.ndarray:
    """mip-NeRF 360's video path: an ellipse at the cameras' mean height, looking at the scene.

    The focus is the point nearest every optical axis (`scene_center`); the vertical is the
    world axis closest to the cameras' mean up. The ellipse is centred on the focus's
    horizontal position, its semi-axes the 90th percentiles of the cameras' horizontal offsets
    from it along the two other world axes, and the frames are equally spaced in arc length.

    Args:
      camtoworlds: [N, 3 or 4, 4] the training cameras.

    Returns:
      [num_frames, 4, 4] camera-to-world matrices; the last frame leads back into the first.
    """
    c2w = np.asarray(camtoworlds, np.float64)
    focus, mean_up = scene_center(c2w), up_vector(c2w)
    k = int(np.argmax(np.abs(mean_up)))
    up = np.eye(3)[k] * np.sign(mean_up[k])
    i, j = [a for a in range(3) if a != k]
    positions = c2w[:, :3, 3]
    semi_i, semi_j = (np.percentile(np.abs(positions[:, a] - focus[a]), 90) for a in (i, j))
    # Equal arc length: invert the cumulative length of a finely sampled ellipse.
    fine = np.linspace(0.0, 2 * np.pi, 10_001)
    length = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(semi_i * np.cos(fine)), np.diff(semi_j * np.sin(fine))))])
    angles = np.interp(np.arange(num_frames) / num_frames * length[-1], length, fine)
    eyes = np.zeros((num_frames, 3))
    eyes[:, i] = focus[i] + semi_i * np.cos(angles)
    eyes[:, j] = focus[j] + semi_j * np.sin(angles)
    eyes[:, k] = np.mean(positions[:, k])
    return np.stack([look_at(eye, focus, up) for eye in eyes])


def forward_facing_spiral(camtoworlds: np.ndarray, bounds: np.ndarray, num_frames: int, turns: int = 2,
                          z_rate: float = 0.5) -> np.ndarray:
    """The LLFF video path: a spiral in front of the average camera, looking at a focus point.

    In the average camera's frame (`average_pose`): the focus lies at depth
    1 / (0.25 / (0.9 near) + 0.75 / (5 far)) from the nearest and farthest bounds; the radii
    are the 90th percentiles of the cameras' |x|, |y|, |z| there; the eye turns `turns` times,
    at (r_x cos a, -r_y sin a, -r_z sin(z_rate a)).

    Args:
      camtoworlds: [N, 3 or 4, 4] the training cameras; bounds: [N, 2] their near/far depths.

    Returns:
      [num_frames, 4, 4] camera-to-world matrices.
    """
    c2w = np.asarray(camtoworlds, np.float64)
    average = average_pose(c2w)
    focus_depth = 1.0 / (0.25 / (0.9 * np.min(bounds)) + 0.75 / (5.0 * np.max(bounds)))
    local = (c2w[:, :3, 3] - average[:3, 3]) @ average[:3, :3]
    radii = np.percentile(np.abs(local), 90, axis=0)
    angles = 2 * np.pi * turns * np.arange(num_frames) / num_frames
    eyes = radii * np.stack([np.cos(angles), -np.sin(angles), -np.sin(z_rate * angles)], axis=-1)
    poses = np.stack([look_at(eye, np.array([0.0, 0.0, -focus_depth]), np.array([0.0, 1.0, 0.0])) for eye in eyes])
    return average @ poses
