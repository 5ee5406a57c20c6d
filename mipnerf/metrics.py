"""Image quality: PSNR, and SSIM from dm_pix with the standard 11x11 Gaussian window (sigma 1.5).

Both take an optional mask ([H, W] bool, True where a pixel is kept) and then ignore the
masked-out pixels: PSNR is that of the kept pixels' mean squared error; SSIM's local means,
variances and covariance are Gaussian-weighted over the kept pixels of each window only
(normalised convolution), and the windows are averaged with weights equal to the Gaussian
weight of their kept pixels, so that a window with no kept pixel does not count. With every
pixel kept this is the usual SSIM.
"""

import functools

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


@functools.lru_cache(maxsize=None)
def _ssim_fn(window: int):
    sigma = SSIM_SIGMA * window / SSIM_WINDOW
    return jax.jit(functools.partial(dm_pix.ssim, max_val=1.0, filter_size=window, filter_sigma=sigma))


def psnr_from_mse(mse):
    """PSNR in dB of images in [0, 1] whose mean squared error is `mse`."""
    return -10.0 * jnp.log10(mse)


def psnr(a: np.ndarray, b: np.ndarray, mask=None) -> float:
    """PSNR in dB between two images in [0, 1] of any equal shape, e.g. [H, W, 3]; with `mask`
    ([H, W] bool), of the kept pixels only."""
    err = (np.asarray(a, np.float64) - b) ** 2
    return float(psnr_from_mse(np.mean(err if mask is None else err[np.asarray(mask, bool)])))


def color_fit(render: np.ndarray, gt: np.ndarray, mask=None) -> np.ndarray:
    """The least-squares affine colour map from `render` to `gt` ([H, W, 3] each): the [4, 3]
    matrix M minimising |[r, g, b, 1] M - gt|^2 over the pixels (the kept ones with `mask`), so
    that `[rgb, 1] @ M` is a 3x3 matrix (rows 0-2) plus a bias (row 3) applied to each pixel."""
    x = np.asarray(render, np.float64).reshape(-1, 3)
    y = np.asarray(gt, np.float64).reshape(-1, 3)
    if mask is not None:
        kept = np.asarray(mask, bool).reshape(-1)
        x, y = x[kept], y[kept]
    design = np.concatenate([x, np.ones_like(x[:, :1])], axis=-1)
    return np.linalg.lstsq(design, y, rcond=None)[0]


def color_corrected_psnr(render: np.ndarray, gt: np.ndarray, mask=None) -> float:
    """PSNR after a per-image affine colour correction of `render` towards `gt` (`color_fit`, in
    closed form), the corrected colours clipped to [0, 1]: the "colour-corrected" PSNR reported for
    models with per-image appearance, which no single render of an unseen view can match exactly.
    Infinite when the render is an exact affine image of the ground truth."""
    m = color_fit(render, gt, mask)
    flat = np.asarray(render, np.float64).reshape(-1, 3)
    corrected = np.clip(np.concatenate([flat, np.ones_like(flat[:, :1])], axis=-1) @ m, 0.0, 1.0)
    err = (corrected - np.asarray(gt, np.float64).reshape(-1, 3)) ** 2
    if mask is not None:
        err = err[np.asarray(mask, bool).reshape(-1)]
    mse = float(np.mean(err))
    return float("inf") if mse == 0 else float(psnr_from_mse(mse))


def ssim_window(height: int, width: int) -> int:
    """The SSIM window for an image: `SSIM_WINDOW`, or for a smaller image the largest odd size that fits."""
    side = min(height, width, SSIM_WINDOW)
    return side if side % 2 else side - 1


def _blur(z, window: int):
    """The Gaussian blur of SSIM (dm_pix's filter) over the windows that fit: [H, W, C] -> [H - w + 1, W - w + 1, C]."""
    half, sigma = window // 2, SSIM_SIGMA * window / SSIM_WINDOW
    filt = np.exp(-0.5 * ((np.arange(window) - half) / sigma) ** 2)
    filt = filt / filt.sum()
    height, width = z.shape[0] - window + 1, z.shape[1] - window + 1
    z = sum(np.float32(filt[k]) * z[k:k + height] for k in range(window))
    return sum(np.float32(filt[k]) * z[:, k:k + width] for k in range(window))


@functools.lru_cache(maxsize=None)
def _masked_ssim_fn(window: int):
    def masked_ssim(a, b, kept):
        weight = _blur(kept, window)  # [h, w, 1] the Gaussian weight of each window's kept pixels
        safe = jnp.where(weight > 0, weight, 1.0)
        local = lambda z: _blur(z * kept, window) / safe  # statistics of the kept pixels alone
        ssim_map = dm_pix.ssim(a, b, max_val=1.0, return_map=True, filter_fn=local)
        return jnp.sum(weight * ssim_map) / (jnp.sum(weight) * a.shape[-1])

    return jax.jit(masked_ssim)


def ssim(a: np.ndarray, b: np.ndarray, mask=None) -> float:
    """Mean SSIM of two [H, W, 3] images in [0, 1], averaged over pixels and channels.

    The window is a `SSIM_WINDOW` x `SSIM_WINDOW` Gaussian of standard deviation `SSIM_SIGMA`,
    applied where it fits inside the image. An image smaller than that gets the largest odd
    window that fits (`ssim_window`), its sigma scaled in proportion. With `mask` ([H, W] bool,
    True where kept), masked-out pixels are ignored as the module docstring says.
    """
    window = ssim_window(*np.shape(a)[:2])
    a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    if mask is None:
        return float(_ssim_fn(window)(a, b))
    return float(_masked_ssim_fn(window)(a, b, jnp.asarray(mask, jnp.float32)[..., None]))
