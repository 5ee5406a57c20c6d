"""What every loader returns: one split of a scene, its images and cameras."""

from typing import NamedTuple, Optional

import numpy as np

from mipnerf.cameras.camera import Intrinsics


class Split(NamedTuple):
    """One split of a scene, loaded, composited and downsampled.

    images: [N, H, W, 3] uint8 colours (3 bytes a pixel, as image files hold them); `colors`
      gives them as floats. None for a split's cameras alone (`load_images=False`).
    camtoworlds: [N, 4, 4] float32 camera-to-world matrices (Blender/OpenGL convention), in
      the frame the model works in.
    intrinsics: the N cameras' `Intrinsics` (fields [N]), in pixels of `images`.
    height, width: image size in pixels.
    files: the N image paths read, in split order.
    bounds: [N, 2] float32 near and far depths of the content each image sees, in the model's
      frame; None where the format has none (Blender).
    transform: [4, 4] float64 map from the format's world frame to the model's frame (a
      similarity: rotation, translation, uniform scale); None where they are the same.
    lossmult: [N] float32 weight of each image's pixels in the data loss; None for 1.
    scale: the image scale (0: full resolution, 1: half, ...) of a multiscale scene.
    masks: [N, H, W] bool, True where a pixel is kept: masked-out pixels (False) are never drawn
      for training and never scored; None where every pixel is kept.
    applied_transform: [4, 4] float64 map from the frame the capture's poses were made in to the
      format's world frame, already applied to them (nerfstudio's `applied_transform`); None
      where there is none.
    """

    images: np.ndarray
    camtoworlds: np.ndarray
    intrinsics: Intrinsics
    height: int
    width: int
    files: list
    bounds: Optional[np.ndarray] = None
    transform: Optional[np.ndarray] = None
    lossmult: Optional[np.ndarray] = None
    scale: int = 0
    masks: Optional[np.ndarray] = None
    applied_transform: Optional[np.ndarray] = None

    def mask(self, index) -> Optional[np.ndarray]:
        """Image `index`'s [H, W] mask (True where kept), or None where every pixel is kept."""
        return None if self.masks is None else self.masks[index]

    def colors(self, index) -> np.ndarray:
        """Image(s) `index` as float32 colours in [0, 1]: [H, W, 3] for an int index."""
        return self.images[index].astype(np.float32) / np.float32(255)
