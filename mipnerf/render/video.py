"""Frames to files: 8-bit colour, a perceptual colour map for depth, and mp4 / gif videos."""

import os
import pathlib

import imageio.v3 as iio
import numpy as np

# Matplotlib's viridis sampled at 9 evenly spaced points (8-bit RGB), interpolated linearly.
VIRIDIS = np.array([
    [68, 1, 84], [71, 45, 123], [59, 82, 139], [44, 114, 142], [33, 145, 140],
    [40, 174, 128], [94, 201, 98], [173, 220, 48], [253, 231, 37],
]) / 255.0

# Depth is normalised between these percentiles of the visible pixels' depths.
DEPTH_PERCENTILES = (1.0, 99.0)
VISIBLE_ACC = 0.5  # opacity above which a pixel counts as visible content


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float colours [..., 3] in [0, 1] (clipped) to 8-bit."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def viridis(x: np.ndarray) -> np.ndarray:
    """Maps values [...] in [0, 1] (clipped) to viridis colours [..., 3] in [0, 1]."""
    pos = np.clip(x, 0.0, 1.0) * (len(VIRIDIS) - 1)
    knots = np.arange(len(VIRIDIS))
    return np.stack([np.interp(pos, knots, VIRIDIS[:, c]) for c in range(3)], axis=-1)


def depth_range(depth: np.ndarray, acc: np.ndarray) -> tuple[float, float]:
    """The near and far depths of the visible content: percentiles of the depths where acc > 0.5.

    Args:
      depth, acc: [...] depths and opacities of the same pixels (one image or several frames).

    Returns:
      (near, far); over every pixel when none is visible.
    """
    visible = depth[acc > VISIBLE_ACC]
    lo, hi = np.percentile(visible if visible.size else depth, DEPTH_PERCENTILES)
    return float(lo), float(hi)


def colorize_depth(depth: np.ndarray, acc: np.ndarray, near: float, far: float, disparity: bool = False) -> np.ndarray:
    """8-bit colour images of depth: yellow near, purple far, fading to white where opacity is low.

    Args:
      depth, acc: [..., H, W] depths and opacities.
      near, far: the depths mapped to the two ends of the colour map (see `depth_range`).
      disparity: spread the colours evenly in 1 / depth rather than depth, as the eye sees an
        unbounded scene: near content gets most of the map, and the sky at the far end.

    Returns:
      [..., H, W, 3] uint8.
    """
    if disparity:
        inv = lambda d: 1.0 / np.maximum(d, 1e-10)
        t = (inv(near) - inv(depth)) / max(inv(near) - inv(far), 1e-10)
    else:
        t = (depth - near) / max(far - near, 1e-10)
    alpha = np.clip(acc, 0.0, 1.0)[..., None]
    return to_uint8(viridis(1.0 - t) * alpha + (1.0 - alpha))


def depth_image(depth: np.ndarray, acc: np.ndarray, disparity: bool = False) -> np.ndarray:
    """`colorize_depth` between the near and far percentiles (`depth_range`) of these pixels. [..., H, W] -> [..., H, W, 3]."""
    return colorize_depth(depth, acc, *depth_range(depth, acc), disparity=disparity)


def _pad_even(frames: np.ndarray) -> np.ndarray:
    """Repeats the last row / column of [F, H, W, 3] frames to make H and W even (H.264 in yuv420p needs it)."""
    height, width = frames.shape[1:3]
    return np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def write_video(stem: pathlib.Path, frames: np.ndarray, fps: int) -> list[pathlib.Path]:
    """Writes [F, H, W, 3] uint8 frames as `stem`.mp4 (H.264) and `stem`.gif (looping).

    The mp4 frames gain one edge row or column where H or W is odd. Returns both paths.
    """
    # imageio-ffmpeg otherwise starts ffmpeg with a Python pre-exec hook, an unsafe fork of a
    # multithreaded (JAX) process; without it, Ctrl-C also stops ffmpeg.
    os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")
    stem.parent.mkdir(parents=True, exist_ok=True)
    mp4, gif = stem.with_name(stem.name + ".mp4"), stem.with_name(stem.name + ".gif")
    iio.imwrite(mp4, _pad_even(frames), fps=fps, codec="libx264", quality=8, macro_block_size=1)
    iio.imwrite(gif, frames, duration=1000.0 / fps, loop=0)
    return [mp4, gif]
