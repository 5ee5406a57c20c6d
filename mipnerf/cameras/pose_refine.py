"""Camera pose refinement: a learned correction of each training camera's pose (`config.pose_refine`).

Camera n's correction is 6 numbers, [N, 6] for the training set: an axis-angle rotation r
(radians; its direction the axis, its length the angle, so that zero is the identity) and a
translation t. It is applied in the camera's own frame, right-multiplying the camera-to-world
matrix as nerfstudio does:

    camtoworld' = camtoworld @ [[R(r), t], [0, 1]]

so that r turns the camera about its own centre and axes (OpenGL: +X right, +Y up, looking down
-Z) and t moves it along them, in the units of the model's frame. Only the pose is refined:
focal lengths, principal points and distortion stay as loaded. The corrections start at zero, are
frozen (learning rate 0) for `pose_warmup_steps`, then follow Adam with their own log-linear
schedule from `pose_lr_init` to `pose_lr_final` and a decoupled weight decay (`pose_decay`)
towards zero, i.e. towards the loaded pose (`optimizer.make_pose_optimizer`). Their gradient comes from the NeRF round's rays
(the proposal rounds only place its samples). Everything is float32.

A motion of all cameras together is invisible to the loss: the scene can follow it. The test
cameras are not refined, so after each update the corrections lose their part that moves all
training cameras together (a rotation, translation and scaling of the world,
`remove_common_motion`): the refined cameras stay in the frame of the loaded ones, where the
test cameras are.
"""

import jax.numpy as jnp
import numpy as np

from mipnerf.cameras import orbits

SIZE = 6  # numbers per camera: axis-angle rotation (3), then translation (3)
_SMALL_ANGLE2 = 1e-4  # below this squared angle (radians^2) Rodrigues' factors use their Taylor series


def zeros(count: int) -> jnp.ndarray:
    """The corrections of `count` cameras that leave them as loaded: [count, 6] float32 zeros."""
    return jnp.zeros((count, SIZE), jnp.float32)


def rotation_matrices(rotvec: jnp.ndarray) -> jnp.ndarray:
    """Rodrigues' formula: [..., 3] axis-angle vectors (radians) -> [..., 3, 3] rotation matrices.

    R = I + a K + b K^2 with K the cross-product matrix of r, a = sin(theta) / theta and
    b = (1 - cos(theta)) / theta^2; below a squared angle of 1e-4 the factors are their Taylor
    series, so that R and its gradient are exact and finite at zero (R(0) is exactly I).
    """
    x, y, z = rotvec[..., 0], rotvec[..., 1], rotvec[..., 2]
    theta2 = x * x + y * y + z * z
    small = theta2 < _SMALL_ANGLE2
    safe2 = jnp.where(small, 1.0, theta2)
    theta = jnp.sqrt(safe2)
    a = jnp.where(small, 1.0 - theta2 / 6.0, jnp.sin(theta) / theta)
    b = jnp.where(small, 0.5 - theta2 / 24.0, (1.0 - jnp.cos(theta)) / safe2)
    o = jnp.zeros_like(x)
    k = jnp.stack([jnp.stack([o, -z, y], -1), jnp.stack([z, o, -x], -1), jnp.stack([-y, x, o], -1)], -2)
    eye = jnp.eye(3, dtype=rotvec.dtype)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def apply(corrections: jnp.ndarray, camtoworlds: jnp.ndarray) -> jnp.ndarray:
    """The corrected cameras: camtoworld @ [[R(r), t], [0, 1]] (in the camera's frame).

    Args:
      corrections: [..., 6] (axis-angle r, translation t).
      camtoworlds: [..., 3 or 4, 4].

    Returns:
      [..., 3, 4] camera-to-world matrices; exactly `camtoworlds[..., :3, :4]` where the correction is zero.
    """
    rotation, centre = camtoworlds[..., :3, :3], camtoworlds[..., :3, 3]
    delta, shift = rotation_matrices(corrections[..., :3]), corrections[..., 3:]
    new_rotation = jnp.einsum("...ij,...jk->...ik", rotation, delta)
    new_centre = centre + jnp.einsum("...ij,...j->...i", rotation, shift)
    return jnp.concatenate([new_rotation, new_centre[..., None]], axis=-1)


def apply_numpy(corrections: np.ndarray, camtoworlds: np.ndarray) -> np.ndarray:
    """`apply` on the host in float64: [N, 6] and [N, 3 or 4, 4] -> [N, 4, 4] camera-to-world matrices."""
    out = np.tile(np.eye(4), (len(camtoworlds), 1, 1))
    c2w = np.asarray(camtoworlds, np.float64)
    r = np.asarray(corrections, np.float64)
    theta = np.linalg.norm(r[:, :3], axis=-1)
    for n in range(len(c2w)):
        delta = orbits.axis_angle(r[n, :3], theta[n]) if theta[n] > 0 else np.eye(3)
        out[n, :3, :3] = c2w[n, :3, :3] @ delta
        out[n, :3, 3] = c2w[n, :3, 3] + c2w[n, :3, :3] @ r[n, 3:]
    return out


def common_motion_basis(camtoworlds: jnp.ndarray) -> jnp.ndarray:
    """An orthonormal basis [N * 6, 7] of the corrections that move all N cameras together.

    A small motion of the whole world (rotation w about the origin, translation u, scaling by
    1 + s) moves camera n (rotation R, centre c) by the correction r = R^T w, t = R^T (w x c + u + s c)
    to first order. The photometric loss cannot see such a motion, since the scene can follow it;
    left free, the training cameras drift together away from the test cameras, which are not
    refined. Its 7 generators (w, u along each axis, and s), flattened and orthonormalised.

    Args:
      camtoworlds: [N, 3 or 4, 4] the training cameras as loaded.
    """
    rotation, centre = camtoworlds[:, :3, :3], camtoworlds[:, :3, 3]
    to_camera = lambda v: jnp.einsum("nji,nj->ni", rotation, v)  # R^T v, per camera
    zero = jnp.zeros_like(centre)
    axes = jnp.eye(3, dtype=centre.dtype)
    generators = [jnp.concatenate([to_camera(jnp.broadcast_to(a, centre.shape)), to_camera(jnp.cross(a, centre))], -1)
                  for a in axes]
    generators += [jnp.concatenate([zero, to_camera(jnp.broadcast_to(a, centre.shape))], -1) for a in axes]
    generators.append(jnp.concatenate([zero, to_camera(centre)], -1))
    basis, _ = jnp.linalg.qr(jnp.stack([g.reshape(-1) for g in generators], axis=-1))
    return basis


def remove_common_motion(corrections: jnp.ndarray, basis: jnp.ndarray) -> jnp.ndarray:
    """[N, 6] corrections less their part that moves all cameras together (`common_motion_basis`'s span)."""
    flat = corrections.reshape(-1)
    return (flat - basis @ (basis.T @ flat)).reshape(corrections.shape)


def angles_deg(corrections: np.ndarray) -> np.ndarray:
    """[N, 6] -> [N] the rotation angle of each correction, in degrees."""
    return np.degrees(np.linalg.norm(np.asarray(corrections, np.float64)[:, :3], axis=-1))
