"""Cameras in the Blender/OpenGL convention (intrinsics and lens distortion) and the cone-cast rays
through their pixels, in a scene's world frame or in NDC; projections of points into images.

Convention: the camera looks down its -Z axis with +Y up and +X right; image rows grow
downward, so the y term of a pixel direction changes sign. Pixel (i, j) (column i, row j)
has its centre at (i + 0.5, j + 0.5). Camera-to-world matrices are 4x4 (or 3x4) with the
rotation in the top-left 3x3 block and the camera centre in the last column.

Rays are cast with `jax.numpy` (`cast_rays`): inside the jitted training step for the pixels it
draws, per chunk when rendering, and on the host in float64 for tests and tools. Projections are
numpy; camera paths around a scene are in `orbits`.
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
