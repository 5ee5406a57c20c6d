"""The tile rasteriser (and the compiled CPU kernel) against brute force: every pixel blends every
Gaussian in depth order (numpy, float64, the original's per-pixel loop), one Gaussian's footprint
against its closed-form 2D covariance, and gradients against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import ROOT  # noqa: F401  (puts the repository on the path)
from mipnerf.cameras import camera
from mipnerf.render import gaussians, rasterize, rasterize_cpu


def look_camera(eye, target, focal, width, height):
    """One pinhole camera (scalar fields) at `eye` looking at `target`, OpenGL convention."""
    forward = np.asarray(target, float) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    c2w = np.stack([right, up, -forward, eye], axis=-1)
    cams = camera.Cameras.of(c2w[None], camera.Intrinsics.pinhole(focal, width, height), width, height, 0.0, 1e3)
    return jax.tree.map(lambda x: x[0], cams)


def random_splats(rng, n, degree=3, spread=1.0, opacity=(-1.0, 4.0)):
    return gaussians.Splats(
        means=rng.uniform(-spread, spread, (n, 3)).astype(np.float32),
        log_scales=rng.uniform(-3.0, -1.2, (n, 3)).astype(np.float32),
        quats=rng.normal(size=(n, 4)).astype(np.float32),
        opacity_logits=rng.uniform(*opacity, n).astype(np.float32),
        sh=(rng.normal(size=(n, (degree + 1) ** 2, 3)) * 0.3).astype(np.float32))


def brute_force(splats, cam, width, height, background):
    """Every pixel against every Gaussian, sorted by depth, in float64 numpy."""
    s = jax.tree.map(lambda x: np.asarray(x, np.float64), splats)
    c2w = np.asarray(cam.camtoworlds, np.float64)
    w2c = c2w[:3, :3].T * np.array([1.0, -1.0, -1.0])[:, None]
    p = (s.means - c2w[:3, 3]) @ w2c.T
    fx, fy, cx, cy = (float(v) for v in cam.intrinsics[:4])
    rot = np.asarray(gaussians.quat_to_rotmat(s.quats))
    cov3 = rot @ np.apply_along_axis(np.diag, 1, np.exp(2 * s.log_scales)) @ rot.transpose(0, 2, 1)
    dirs = (s.means - c2w[:3, 3]) / np.linalg.norm(s.means - c2w[:3, 3], axis=-1, keepdims=True)
    colors = np.maximum(np.einsum("nk,nkc->nc", np.asarray(gaussians.sh_basis(dirs, s.sh_degree)), s.sh) + 0.5, 0)
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5, indexing="xy")
    rgb, t, done = np.zeros((height, width, 3)), np.ones((height, width)), np.zeros((height, width), bool)
    for i in np.argsort(p[:, 2]):
        x, y, z = p[i]
        if z <= rasterize.NEAR_PLANE:
            continue
        lx, ly = 1.3 * 0.5 * width / fx, 1.3 * 0.5 * height / fy
        tx, ty = np.clip(x / z, -lx, lx) * z, np.clip(y / z, -ly, ly) * z
        jac = np.array([[fx / z, 0, -fx * tx / z ** 2], [0, fy / z, -fy * ty / z ** 2]])
        cov2 = jac @ w2c @ cov3[i] @ w2c.T @ jac.T + rasterize.DILATION * np.eye(2)
        conic = np.linalg.inv(cov2)
        d = np.stack([u - (fx * x / z + cx), v - (fy * y / z + cy)], axis=-1)
        power = -0.5 * np.einsum("hwi,ij,hwj->hw", d, conic, d)
        alpha = np.minimum(0.99, 1 / (1 + np.exp(-s.opacity_logits[i])) * np.exp(power))
        use = ~done & (alpha >= 1 / 255)
        after = t * (1 - alpha)
        done |= use & (after < 1e-4)
        use &= after >= 1e-4
        rgb += np.where(use[..., None], (alpha * t)[..., None] * colors[i], 0)
        t = np.where(use, after, t)
    return rgb + t[..., None] * background, 1 - t


@pytest.mark.parametrize("seed,tile", [(0, 16), (1, 16), (2, 4)])
def test_tiles_equal_every_pixel_against_every_gaussian(seed, tile):
    rng = np.random.default_rng(seed)
    splats = random_splats(rng, 80)
    cam = look_camera(np.array([2.5, -1.5, 1.0]), [0, 0, 0], 45.0, 53, 37)  # not a multiple of the tile
    background = np.array([0.2, 0.5, 0.9])
    raster = rasterize.rasterize(splats, cam, 53, 37, background, rasterize.plan(splats, cam, 53, 37, tile))
    want_rgb, want_alpha = brute_force(splats, cam, 53, 37, background)
    assert not raster.overflow
    assert want_alpha.max() > 0.99 and want_alpha.min() < 0.05  # opaque and empty pixels both occur
    np.testing.assert_allclose(raster.rgb, want_rgb, atol=2e-5)
    np.testing.assert_allclose(raster.alpha, want_alpha, atol=2e-5)


@pytest.mark.parametrize("seed,tile", [(0, 16), (1, 4)])
def test_cpu_kernel_equals_every_pixel_against_every_gaussian(seed, tile):
    rng = np.random.default_rng(seed)
    splats = random_splats(rng, 80)
    cam = look_camera(np.array([2.5, -1.5, 1.0]), [0, 0, 0], 45.0, 53, 37)
    background = np.array([0.2, 0.5, 0.9])
    rgb, alpha = rasterize_cpu.render(rasterize_cpu.scene(splats), cam, 53, 37, background, tile)
    want_rgb, want_alpha = brute_force(splats, cam, 53, 37, background)
    assert want_alpha.max() > 0.99 and want_alpha.min() < 0.05
    np.testing.assert_allclose(rgb, want_rgb, atol=2e-5)
    np.testing.assert_allclose(alpha, want_alpha, atol=2e-5)


def test_cpu_kernel_equals_the_rasteriser_with_fewer_bands_and_an_opaque_clump():
    """Degree 3 splats drawn with bands up to 1 (both), and a clump where every pixel stops early."""
    rng = np.random.default_rng(4)
    splats = random_splats(rng, 200, spread=0.6, opacity=(2.0, 6.0))
    cam = look_camera(np.array([2.0, 1.0, 0.5]), [0, 0, 0], 60.0, 40, 30)
    want = rasterize.render(splats, cam, 40, 30, np.zeros(3), sh_degree=1)
    rgb, alpha = rasterize_cpu.render(rasterize_cpu.scene(splats, sh_degree=1), cam, 40, 30, np.zeros(3))
    assert float(want.alpha.max()) > 1 - 1e-3
    np.testing.assert_allclose(rgb, want.rgb, atol=2e-5)
    np.testing.assert_allclose(alpha, want.alpha, atol=2e-5)


def test_early_termination_and_a_plan_too_small_is_reported():
    rng = np.random.default_rng(3)
    splats = random_splats(rng, 60, degree=0, spread=0.3, opacity=(5.0, 6.0))  # a dense opaque clump
    cam = look_camera(np.array([3.0, 0.0, 0.0]), [0, 0, 0], 40.0, 32, 32)
    want_rgb, want_alpha = brute_force(splats, cam, 32, 32, np.zeros(3))
    plan = rasterize.plan(splats, cam, 32, 32)
    got = rasterize.rasterize(splats, cam, 32, 32, jnp.zeros(3), plan)
    np.testing.assert_allclose(got.rgb, want_rgb, atol=2e-5)
    assert want_alpha.max() > 1 - 1e-3
    small = rasterize.rasterize(splats, cam, 32, 32, jnp.zeros(3), plan._replace(per_tile=rasterize.CHUNK))
    assert bool(small.overflow) and not bool(got.overflow)


def test_one_gaussian_footprint_is_its_projected_covariance():
    """A Gaussian at depth z on the optical axis, axes along the camera's: its 2D covariance is
    diag(fx^2 sx^2, fy^2 sy^2) / z^2 plus the dilation, centred at the principal point."""
    width, height, focal, z = 64, 48, 50.0, 2.0
    cam = look_camera(np.array([0.0, -z, 0.0]), [0, 0, 0], focal, width, height)
    sx, sz = 0.12, 0.05  # world x is the camera's x; world z its up (image -y)
    opacity = 0.5
    splats = gaussians.Splats(np.zeros((1, 3), np.float32), np.log([[sx, 0.3, sz]]).astype(np.float32),
                              np.array([[1.0, 0, 0, 0]], np.float32), np.array([np.log(opacity / (1 - opacity))],
                                                                                np.float32),
                              np.zeros((1, 1, 3), np.float32))
    alpha = np.asarray(rasterize.render(splats, cam, width, height, np.zeros(3)).alpha)
    var_u = (focal * sx / z) ** 2 + rasterize.DILATION
    var_v = (focal * sz / z) ** 2 + rasterize.DILATION
    u, v = np.meshgrid(np.arange(width) + 0.5 - width / 2, np.arange(height) + 0.5 - height / 2, indexing="xy")
    want = opacity * np.exp(-0.5 * (u ** 2 / var_u + v ** 2 / var_v))
    want = np.where(want >= 1 / 255, want, 0)
    np.testing.assert_allclose(alpha, want, atol=1e-6)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(4)
    with jax.enable_x64(True):
        splats = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), random_splats(rng, 12, degree=1, spread=0.6))
        cam = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64) if x.dtype == np.float32 else x,
                           look_camera(np.array([2.5, 0.5, 0.4]), [0, 0, 0], 30.0, 24, 20))
        plan = rasterize.plan(splats, cam, 24, 20)
        weights = jnp.asarray(rng.normal(size=(20, 24, 3)))

        def loss(s):
            return jnp.sum(rasterize.rasterize(s, cam, 24, 20, jnp.full(3, 0.3), plan).rgb * weights)

        grads = jax.grad(loss)(splats)
        for field in gaussians.Splats._fields:
            direction = jax.tree.map(jnp.zeros_like, splats)._replace(
                **{field: jnp.asarray(rng.normal(size=getattr(splats, field).shape))})
            eps = 1e-6
            plus = jax.tree.map(lambda x, d: x + eps * d, splats, direction)
            minus = jax.tree.map(lambda x, d: x - eps * d, splats, direction)
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            analytic = jnp.sum(getattr(grads, field) * getattr(direction, field))
            assert abs(float(numeric)) > 1e-4, field  # the direction moves the image
            np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7, err_msg=field)
