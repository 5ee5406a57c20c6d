"""Image quality: PSNR, and SSIM from dm_pix with the standard 11x11 Gaussian window (sigma 1.5)."""

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


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two images in [0, 1] of any equal shape, e.g. [H, W, 3]."""
    return float(psnr_from_mse(np.mean((np.asarray(a, np.float64) - b) ** 2)))


def ssim_window(height: int, width: int) -> int:
    """The SSIM window for an image: `SSIM_WINDOW`, or for a smaller image the largest odd size that fits."""
    side = min(height, width, SSIM_WINDOW)
    return side if side % 2 else side - 1


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two [H, W, 3] images in [0, 1], averaged over pixels and channels.

    The window is a `SSIM_WINDOW` x `SSIM_WINDOW` Gaussian of standard deviation `SSIM_SIGMA`,
    applied where it fits inside the image. An image smaller than that gets the largest odd
    window that fits (`ssim_window`), its sigma scaled in proportion.
    """
    window = ssim_window(*np.shape(a)[:2])
    return float(_ssim_fn(window)(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)))
