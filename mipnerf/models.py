"""The mip-NeRF 360 model: proposal and NeRF MLPs over integrated positional encodings.

Modules are plain `flax.linen` modules used through `init` / `apply`. The MLPs' matmuls run in
`dtype` (bfloat16 for mixed precision) with float32 parameters; the encodings, sampling and
compositing around them stay float32.
"""

from typing import NamedTuple, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mipnerf import coord, stepfun, volume
from mipnerf.camera import Rays


class MLP(nn.Module):
    """An MLP on the IPE of Gaussians; density always, view-dependent colour when `color`.

    Used with `color=False` as a proposal MLP and with `color=True` as the NeRF MLP. As in NeRF,
    the encoded input is concatenated to the activations after layer `skip_layer` (0-based),
    and after every `skip_layer` layers from there.
    """

    depth: int
    width: int
    skip_layer: int
    min_deg_point: int
    max_deg_point: int
    density_bias: float
    color: bool = False
    bottleneck_width: int = 256
    view_depth: int = 1
    view_width: int = 128
    deg_view: int = 4
    rgb_padding: float = 0.001
    disable_integration: bool = False  # NeRF's positional encoding of the means: the variances are dropped
    dtype: jnp.dtype = jnp.float32

    def _dense(self, features: int, name: str) -> nn.Dense:
        return nn.Dense(features, dtype=self.dtype, param_dtype=jnp.float32,
                        kernel_init=nn.initializers.he_uniform(), name=name)

    @nn.compact
    def __call__(self, mean: jnp.ndarray, var: jnp.ndarray, viewdirs: Optional[jnp.ndarray] = None):
        """Evaluates the field on Gaussians, given by their projections onto K directions.

        Args:
          mean, var: [..., S, K] means and variances of the projections (K = 3 for the axes:
            world-space means and diagonal covariances).
          viewdirs: [..., 3] unit view directions (only with `color`).

        Returns:
          density: [..., S] float32, non-negative; rgb: [..., S, 3] float32 in
          [-pad, 1 + pad], or None without `color`.
        """
        if self.disable_integration:  # IPE with zero variance is exactly pos_enc of the means
            var = jnp.zeros_like(var)
        inputs = coord.integrated_pos_enc(mean, var, self.min_deg_point, self.max_deg_point)
        x = inputs
        for i in range(self.depth):
            x = nn.relu(self._dense(self.width, f"layer_{i}")(x))
            if i % self.skip_layer == 0 and 0 < i < self.depth - 1:
                x = jnp.concatenate([x, inputs.astype(x.dtype)], axis=-1)
        raw_density = self._dense(1, "density")(x)[..., 0].astype(jnp.float32)
        density = nn.softplus(raw_density + self.density_bias)
        if not self.color:
            return density, None
        bottleneck = self._dense(self.bottleneck_width, "bottleneck")(x)
        view_enc = coord.pos_enc(viewdirs, 0, self.deg_view, append_identity=True)
        view_enc = jnp.broadcast_to(view_enc[..., None, :], bottleneck.shape[:-1] + view_enc.shape[-1:])
        x = jnp.concatenate([bottleneck, view_enc.astype(bottleneck.dtype)], axis=-1)
        for i in range(self.view_depth):
            x = nn.relu(self._dense(self.view_width, f"view_layer_{i}")(x))
        rgb = nn.sigmoid(self._dense(3, "rgb")(x).astype(jnp.float32))
        return density, rgb * (1 + 2 * self.rgb_padding) - self.rgb_padding


class Round(NamedTuple):
    """One sampling round of a batch of rays: breakpoints in normalised distance and weights.

    s: [..., S+1] in [0, 1], mapped to metric distance by `coord.s_to_t`; weights: [..., S].
    """

    s: jnp.ndarray
    weights: jnp.ndarray


class MipNerf360(nn.Module):
    """Proposal rounds (density only) that resample finer intervals, then the NeRF round."""

    num_prop_samples: Sequence[int]
    num_nerf_samples: int
    prop_mlp: MLP
    nerf_mlp: MLP
    anneal_slope: float = 10.0
    resample_padding: float = 0.0
    dilation_multiplier: float = 0.5
    dilation_bias: float = 0.0025
    ray_spacing: str = "linear"  # how s maps to t: "linear" or "disparity" (coord.s_to_t)
    contraction: bool = False  # push the Gaussians through mip-NeRF 360's contraction
    basis: str = "axes"  # directions the Gaussians are projected on (coord.basis_directions)
    cylinder: bool = False  # cylinders rather than cones (NDC rays)
    opaque_background: bool = False  # the last interval is opaque: nothing shows behind the scene

    def gaussians(self, rays: Rays, t: jnp.ndarray):
        """The encoding inputs of every interval: projections [..., S, K] (means, variances)."""
        if self.basis == "axes" and not self.contraction and not self.cylinder:
            mean, var = coord.conical_frustum_to_gaussian(rays.directions, t[..., :-1], t[..., 1:], rays.radii)
            return mean + rays.origins[..., None, :], var
        basis = jnp.asarray(coord.basis_directions(self.basis))
        return coord.interval_gaussians_on_basis(rays.origins, rays.directions, t[..., :-1], t[..., 1:], rays.radii,
                                                 basis, self.contraction, self.cylinder)

    @nn.compact
    def __call__(self, key, rays: Rays, train_frac, background):
        """Renders a batch of rays.

        Args:
          key: a `jax.random` key for jittered sampling (training), or None for deterministic
            sampling (evaluation).
          rays: `Rays` with leading shape [B].
          train_frac: scalar in [0, 1], the fraction of training done (anneals the proposals).
          background: [3] colour behind the scene.

        Returns:
          (`volume.Composite` of the NeRF round, list of every round's `Round`, the last being
          the NeRF round's).
        """
        batch_shape = rays.origins.shape[:-1]
        s = jnp.broadcast_to(jnp.array([0.0, 1.0]), batch_shape + (2,))
        w = jnp.ones(batch_shape + (1,))
        num_samples = list(self.num_prop_samples) + [self.num_nerf_samples]
        power = stepfun.anneal_power(train_frac, self.anneal_slope) if key is not None else 1.0
        rounds = []
        for i, n in enumerate(num_samples):
            if i > 0:
                if self.dilation_multiplier > 0:
                    # Dilate by a multiple of the expected width of the last round's intervals.
                    prod = 1
                    for m in num_samples[:i]:
                        prod *= m
                    dilation = self.dilation_bias + self.dilation_multiplier / prod
                    s, w = stepfun.max_dilate_weights(s, w, dilation, domain=(0.0, 1.0))
                w = stepfun.anneal_weights(s, w, power, self.resample_padding)
            round_key = None if key is None else jax.random.fold_in(key, i)
            s = jax.lax.stop_gradient(stepfun.sample_intervals(round_key, s, jax.lax.stop_gradient(w), n))
            t = coord.s_to_t(s, rays.near, rays.far, self.ray_spacing)
            mean, var = self.gaussians(rays, t)
            if i < len(num_samples) - 1:
                density, _ = self.prop_mlp(mean, var)
            else:
                density, rgb = self.nerf_mlp(mean, var, rays.viewdirs)
            w = volume.compute_weights(density, t, rays.directions, opaque=self.opaque_background)
            rounds.append(Round(s=s, weights=w))
        return volume.composite(w, rgb, t, background), rounds


def compute_dtype(precision: str) -> jnp.dtype:
    """The matmul dtype of a precision policy: "bf16", "f32", or "auto" (bf16 on GPU/TPU, f32 on CPU)."""
    if precision == "auto":
        precision = "f32" if jax.default_backend() == "cpu" else "bf16"
    return jnp.bfloat16 if precision == "bf16" else jnp.float32


def build_model(config: ml_collections.ConfigDict) -> MipNerf360:
    """The model a config describes."""
    dtype = compute_dtype(config.precision)
    common = dict(skip_layer=config.skip_layer, min_deg_point=config.min_deg_point,
                  max_deg_point=config.max_deg_point, density_bias=config.density_bias,
                  disable_integration=config.disable_integration, dtype=dtype)
    prop = MLP(depth=config.prop_depth, width=config.prop_width, **common)
    nerf = MLP(depth=config.nerf_depth, width=config.nerf_width, color=True,
               bottleneck_width=config.bottleneck_width, view_depth=config.view_depth,
               view_width=config.view_width, deg_view=config.deg_view, rgb_padding=config.rgb_padding, **common)
    return MipNerf360(
        num_prop_samples=tuple(config.num_prop_samples), num_nerf_samples=config.num_nerf_samples,
        prop_mlp=prop, nerf_mlp=nerf, anneal_slope=config.anneal_slope,
        resample_padding=config.resample_padding, dilation_multiplier=config.dilation_multiplier,
        dilation_bias=config.dilation_bias, ray_spacing=config.ray_spacing, contraction=config.contraction,
        basis=config.basis, cylinder=config.forward_facing, opaque_background=config.opaque_background)
