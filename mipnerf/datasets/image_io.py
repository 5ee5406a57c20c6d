"""Reading images for the loaders: decoding with checks, alpha compositing, area downsampling, and
decoding a split on a thread pool into one preallocated uint8 array.

Images are kept as 8-bit RGB, 3 bytes a pixel, as PNG and JPEG files hold them. Compositing and
downsampling work in float32 on one image at a time; the result is rounded back to uint8, at
most half a level (0.2 %) off the float average.
"""

import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from mipnerf.errors import DatasetError

# Decoding threads: PNG and JPEG decoding release the GIL, so every core is used.
_DECODE_THREADS = max(2, os.cpu_count() or 1)

# What PIL raises for files that are not images or are cut short, besides OSError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)


def read_image(path: Path, white_background: bool = True, expected: str = "a PNG") -> np.ndarray:
    """Decodes one image and composites any alpha onto a white (or black) background.

    Args:
      expected: what the file should be, for the error messages (e.g. "a PNG named by the frame's 'file_path'").

    Returns:
      [H, W, 3]: the file's uint8 values for 8-bit images without alpha, else float32 colours in [0, 1].
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
    if pixels.dtype == np.uint8 and pixels.shape[-1] == 3:
        return pixels
    pixels = pixels.astype(np.float32) / np.float32(np.iinfo(pixels.dtype).max)
    if pixels.shape[-1] == 3:
        return pixels
    rgb, alpha = pixels[..., :3], pixels[..., 3:]
    background = np.float32(1.0 if white_background else 0.0)
    return rgb * alpha + (1.0 - alpha) * background


def image_size(path: Path, expected: str = "an image") -> tuple[int, int]:
    """(width, height) of an image file, from its header alone; errors as `read_image`'s."""
    if not path.is_file():
        raise DatasetError(f"image file {path} is missing; expected {expected}")
    try:
        with Image.open(path) as img:
            return img.size
    except _DECODE_ERRORS as e:
        raise DatasetError(f"image file {path} cannot be decoded ({e}); expected {expected}") from None


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Colours in [0, 1] (float) rounded to uint8; uint8 input is returned as it is."""
    if image.dtype == np.uint8:
        return image
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def downsample(image: np.ndarray, factor: int, path: Path, crop: bool = False) -> np.ndarray:
    """Averages [H, W, 3] `image` (uint8 or float colours) over `factor` x `factor` blocks into
    [H // factor, W // factor, 3] uint8, the average taken in float32 and rounded.

    Sides that `factor` does not divide are an error naming `path`, or, with `crop`, lose their
    last rows or columns (which keeps the principal point where it was).
    """
    if factor == 1:
        return to_uint8(image)
    height, width = image.shape[:2]
    if height % factor or width % factor:
        if not crop:
            raise DatasetError(
                f"image file {path} is {width}x{height} pixels, which factor {factor} does not divide; "
                f"expected both sides divisible by {factor}"
            )
        height, width = height - height % factor, width - width % factor
        image = image[:height, :width]
    mean = image.reshape(height // factor, factor, width // factor, factor, 3).mean(axis=(1, 3), dtype=np.float32)
    return to_uint8(mean / np.float32(255) if image.dtype == np.uint8 else mean)


def downsample_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    """[H, W] bool (True where kept) -> [H // factor, W // factor]: a pixel of the smaller image is
    kept only where every pixel of its block is, since the others blend in masked-out content. The
    last rows and columns that `factor` does not divide are dropped, as `downsample` crops."""
    height, width = (side - side % factor for side in mask.shape)
    return mask[:height, :width].reshape(height // factor, factor, width // factor, factor).all(axis=(1, 3))


def check_same_size(sizes: list, paths: list) -> None:
    """Raises `DatasetError` naming the first image whose size (height, width) differs from the first's."""
    for path, (height, width) in zip(paths, sizes):
        if (height, width) != sizes[0]:
            raise DatasetError(
                f"image file {path} is {width}x{height} pixels but {paths[0]} is "
                f"{sizes[0][1]}x{sizes[0][0]}; expected every image of the split to have one size"
            )


def read_images(items: list, paths: list, read, load_images: bool = True) -> tuple[Optional[np.ndarray], tuple]:
    """A split's images [N, h, w, 3] uint8 and their size (h, w), as `read_images_into` gives them;
    without `load_images`, None and the size, decoding the first image only (for a split's cameras)."""
    if not load_images:
        return None, read(items[0])[1].shape[:2]
    images = read_images_into(items, paths, read)
    return images, images.shape[1:3]


def read_images_into(items: list, paths: list, read) -> np.ndarray:
    """Decodes a split's images into one preallocated array, on a thread pool.

    Args:
      items: what `read` takes, one per image; paths: the images' files, for the messages.
      read: `item -> (size, pixels)`: the file's (height, width) and its [h, w, 3] uint8 pixels.

    Returns:
      [N, h, w, 3] uint8. The first image gives the size; a file of another size is an error
      naming it and the first (see `check_same_size`).
    """
    size, first = read(items[0])
    out = np.empty((len(items),) + first.shape, np.uint8)
    out[0] = first
    del first

    def read_into(k):
        size_k, pixels = read(items[k])
        check_same_size([size, size_k], [paths[0], paths[k]])
        out[k] = pixels

    with ThreadPoolExecutor(max(1, min(_DECODE_THREADS, len(items) - 1))) as pool:
        list(pool.map(read_into, range(1, len(items))))  # raises the first error
    return out
