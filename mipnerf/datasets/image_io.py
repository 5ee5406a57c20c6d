"""Reading images for the loaders: decoding with checks, alpha compositing, area downsampling."""

import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from mipnerf.errors import DatasetError

# Decoding threads: PNG and JPEG decoding release the GIL, so a few threads overlap well.
_DECODE_THREADS = 4

# What PIL raises for files that are not images or are cut short, besides OSError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)


def read_image(path: Path, white_background: bool = True, expected: str = "a PNG") -> np.ndarray:
    """Decodes one image and composites any alpha onto a white (or black) background.

    Args:
      expected: what the file should be, for the error messages (e.g. "a PNG named by the frame's 'file_path'").

    Returns:
      [H, W, 3] float64 colours in [0, 1].
    """
    if not path.is_file():
        raise DatasetError(f"image file {path} is missing; expected {expected}")
    try:
        data = path.read_bytes()
        # verify() checks every chunk's checksum through to the end marker; load() decodes.
        Image.open(io.BytesIO(data)).verify()
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode.startswith("I;16"):
                pixels = np.asarray(img)[..., None].repeat(3, axis=-1)
            else:
                has_alpha = "A" in img.getbands() or "transparency" in img.info
                pixels = np.asarray(img.convert("RGBA" if has_alpha else "RGB"))
    except _DECODE_ERRORS as e:
        raise DatasetError(f"image file {path} cannot be decoded ({e}); expected a complete image, {expected}") from None
    pixels = pixels.astype(np.float64) / np.iinfo(pixels.dtype).max
    if pixels.shape[-1] == 3:
        return pixels
    rgb, alpha = pixels[..., :3], pixels[..., 3:]
    background = 1.0 if white_background else 0.0
    return rgb * alpha + (1.0 - alpha) * background


def downsample(image: np.ndarray, factor: int, path: Path, crop: bool = False) -> np.ndarray:
    """Averages [H, W, 3] `image` over `factor` x `factor` blocks into [H // factor, W // factor, 3].

    Sides that `factor` does not divide are an error naming `path`, or, with `crop`, lose their
    last rows or columns (which keeps the principal point where it was).
    """
    height, width = image.shape[:2]
    if height % factor or width % factor:
        if not crop:
            raise DatasetError(
                f"image file {path} is {width}x{height} pixels, which factor {factor} does not divide; "
                f"expected both sides divisible by {factor}"
            )
        height, width = height - height % factor, width - width % factor
        image = image[:height, :width]
    return image.reshape(height // factor, factor, width // factor, factor, 3).mean(axis=(1, 3))


def check_same_size(sizes: list, paths: list) -> None:
    """Raises `DatasetError` naming the first image whose size (height, width) differs from the first's."""
    for path, (height, width) in zip(paths, sizes):
        if (height, width) != sizes[0]:
            raise DatasetError(
                f"image file {path} is {width}x{height} pixels but {paths[0]} is "
                f"{sizes[0][1]}x{sizes[0][0]}; expected every image of the split to have one size"
            )


def read_images(paths: list, read) -> list:
    """`read(path)` of every path, decoded in a few threads; the first error raised stops it."""
    with ThreadPoolExecutor(max(1, min(_DECODE_THREADS, len(paths)))) as pool:
        return list(pool.map(read, paths))
