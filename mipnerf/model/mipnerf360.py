"""The mip-NeRF 360 model: proposal and NeRF fields, MLPs over integrated positional encodings
or small MLPs over hash grids (`field="grid"`, Zip-NeRF-style).

Modules are plain `flax.linen` modules used through `init` / `apply`. The MLPs' matmuls run in
`dtype` (bfloat16 for mixed precision) with float32 parameters; the encodings, sampling and
compositing around them stay float32.
"""

from typing import Callable, NamedTuple, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mipnerf.cameras.camera import Rays
from mipnerf.errors import ConfigError
from mipnerf.model import coord, grid, stepfun, volume


def dense_layer(features: int, name: str, dtype) -> nn.Dense:
    return nn.Dense(features, dtype=dtype, param_dtype=jnp.float32, kernel_init=nn.initializers.he_uniform(), name=name)


def density_and_color(field, x, viewdirs, appearance=None):
    """A field's outputs from its features x [..., S, C] (inside its compact `__call__`).

    `field` supplies density_bias, density_activation, color, bottleneck_width, view_depth,
    view_width, view_skip_layer, deg_view, rgb_padding, appearance_dim and dtype. Density is
    softplus(raw + density_bias) or exp(raw + density_bias) ("exp", Zip-NeRF's), [..., S]. With
    `color`, rgb [..., S, 3] comes from a bottleneck, the encoding of the unit view directions
    [..., 3], with `appearance_dim` the appearance vectors [..., appearance_dim] (None: zeros), and
    `view_depth` layers, whose input is concatenated again after layer i when i % view_skip_layer
    == 0 and i > 0 (Zip-NeRF: 3 layers, skip 2, so the last layer sees its input); else None.
    The density never sees the appearance.
    """
    raw_density = dense_layer(1, "density", field.dtype)(x)[..., 0].astype(jnp.float32) + field.density_bias
    if field.density_activation == "exp":
        density = jnp.exp(jnp.minimum(raw_density, 80.0))  # 80: exp stays finite in float32
    else:
        density = nn.softplus(raw_density)
    if not field.color:
        return density, None
    bottleneck = dense_layer(field.bottleneck_width, "bottleneck", field.dtype)(x)
    view_enc = coord.pos_enc(viewdirs, 0, field.deg_view, append_identity=True)
    view_enc = jnp.broadcast_to(view_enc[..., None, :], bottleneck.shape[:-1] + view_enc.shape[-1:])
    parts = [bottleneck, view_enc.astype(bottleneck.dtype)]
    if field.appearance_dim:
        if appearance is None:
            appearance = jnp.zeros(viewdirs.shape[:-1] + (field.appearance_dim,), jnp.float32)
        appearance = jnp.broadcast_to(appearance[..., None, :], bottleneck.shape[:-1] + appearance.shape[-1:])
        parts.append(appearance.astype(bottleneck.dtype))
    x = view_inputs = jnp.concatenate(parts, axis=-1)
    for i in range(field.view_depth):
        x = nn.relu(dense_layer(field.view_width, f"view_layer_{i}", field.dtype)(x))
        if field.view_skip_layer and i % field.view_skip_layer == 0 and i > 0:
            x = jnp.concatenate([x, view_inputs], axis=-1)
    rgb = nn.sigmoid(dense_layer(3, "rgb", field.dtype)(x).astype(jnp.float32))
    return density, rgb * (1 + 2 * field.rgb_padding) - field.rgb_padding


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
    view_skip_layer: int = 0  # the view MLP's input again after its layer i when i % view_skip_layer == 0, i > 0
    deg_view: int = 4
    rgb_padding: float = 0.001
    density_activation: str = "softplus"  # or "exp"
    disable_integration: bool = False  # NeRF's positional encoding of the means: the variances are dropped
    appearance_dim: int = 0  # length of the appearance vectors the colour branch takes (0: none)
    basis: str = "axes"  # directions the Gaussians are projected on (coord.basis_directions)
    dtype: jnp.dtype = jnp.float32

    def inputs(self, rays: Rays, t: jnp.ndarray, contraction: bool, cylinder: bool, keys=None):
        """What `__call__` takes for the intervals t [..., S+1] of `rays` [...]: the Gaussians'
        projections on `basis` (means [..., S, K], variances [..., S, K]), contracted with `contraction`,
        of cylinders rather than cones with `cylinder`. `keys` are unused (a Gaussian needs no draw)."""
        if self.basis == "axes" and not contraction and not cylinder:
            mean, var = coord.conical_frustum_to_gaussian(rays.directions, t[..., :-1], t[..., 1:], rays.radii)
            return mean + rays.origins[..., None, :], var
        basis = jnp.asarray(coord.basis_directions(self.basis))
        return coord.interval_gaussians_on_basis(rays.origins, rays.directions, t[..., :-1], t[..., 1:], rays.radii,
                                                 basis, contraction, cylinder)

    def decay(self, params) -> jnp.ndarray:
        """The field's weight decay, of its parameters `params`: none."""
        return jnp.float32(0)

    @nn.compact
    def __call__(self, mean: jnp.ndarray, var: jnp.ndarray, viewdirs: Optional[jnp.ndarray] = None,
                 appearance: Optional[jnp.ndarray] = None):
        """Evaluates the field on Gaussians, given by their projections onto K directions.

        Args:
          mean, var: [..., S, K] means and variances of the projections (K = 3 for the axes:
            world-space means and diagonal covariances).
          viewdirs: [..., 3] unit view directions (only with `color`).
          appearance: [..., appearance_dim] appearance vectors (only with `color` and
            `appearance_dim`; None: zeros).

        Returns:
          density: [..., S] float32, non-negative; rgb: [..., S, 3] float32 in
          [-pad, 1 + pad], or None without `color`.
        """
        if self.disable_integration:  # IPE with zero variance is exactly pos_enc of the means
            var = jnp.zeros_like(var)
        inputs = coord.integrated_pos_enc(mean, var, self.min_deg_point, self.max_deg_point)
        x = inputs
        for i in range(self.depth):
            x = nn.relu(dense_layer(self.width, f"layer_{i}", self.dtype)(x))
            if i % self.skip_layer == 0 and 0 < i < self.depth - 1:
                x = jnp.concatenate([x, inputs.astype(x.dtype)], axis=-1)
        return density_and_color(self, x, viewdirs, appearance)


class GridField(nn.Module):
    """A hash grid and a small MLP: density always, view-dependent colour when `color`.

    The grid's features of a frustum's multisamples (each level down-weighted by the sample's
    scale) are averaged, then `depth` layers of `width` give the density and, with `color`,
    feed the colour head.
    """

    encoding: grid.HashEncoding
    multisamples: int = 6  # points per frustum: 6 (Zip-NeRF's pattern) or 1 (the mean)
    width: int = 64
    depth: int = 1
    density_bias: float = -1.0
    color: bool = False
    bottleneck_width: int = 15
    view_depth: int = 2
    view_width: int = 64
    view_skip_layer: int = 0  # as `MLP`'s
    deg_view: int = 4
    rgb_padding: float = 0.001
    density_activation: str = "softplus"  # or "exp"
    appearance_dim: int = 0  # length of the appearance vectors the colour branch takes (0: none)
    multisample_rotation: bool = False  # turn each frustum's pattern (Zip-NeRF's; coord.multisample_rotation)
    multisample_scale: float = 1.0  # each multisample's scale, in radial standard deviations
    bound: float = 1.5  # without contraction, the grid spans [-bound, bound]^3
    decay_mult: float = 0.1  # the weight of the tables' decay in the loss
    dtype: jnp.dtype = jnp.float32

    def inputs(self, rays: Rays, t: jnp.ndarray, contraction: bool, cylinder: bool, keys=None):
        """What `__call__` takes for the intervals t [..., S+1] of `rays` [...]: multisamples
        (points [..., S, M, 3], scales [..., S, M]), see `grid.grid_inputs`. With
        `multisample_rotation`, each ray's key of `keys` [...] (None: evaluation) draws its
        intervals' turns of the pattern."""
        rotation = None
        if self.multisample_rotation:
            intervals = t.shape[-1] - 1
            if keys is None:
                rotation = coord.multisample_rotation(t.shape[:-1] + (intervals,))
            else:
                rotation = per_ray(keys, t.shape[:-1], lambda k: coord.multisample_rotation((intervals,), k))
        return grid.grid_inputs(rays.origins, rays.directions, t, rays.radii, contraction, self.bound, cylinder,
                                self.multisamples, rotation, self.multisample_scale)

    def decay(self, params) -> jnp.ndarray:
        """Zip-NeRF's weight decay of the hash grid, of the field's parameters `params`: `decay_mult`
        times the sum over its levels of the mean squared table entry (so that small coarse levels
        weigh as much as large fine ones), of the entries as stored (features / table_scale)."""
        table = params["encoding"]["table"]
        layout = self.encoding.layout()
        levels = zip(layout.offset, layout.size)
        return self.decay_mult * sum(jnp.mean(table[int(offset):int(offset + size)] ** 2) for offset, size in levels)

    @nn.compact
    def __call__(self, points: jnp.ndarray, scales: jnp.ndarray, viewdirs: Optional[jnp.ndarray] = None,
                 appearance: Optional[jnp.ndarray] = None):
        """Evaluates the field on frustums given by multisamples.

        Args:
          points: [..., S, M, 3] in the grid's [0, 1]^3; scales: [..., S, M] in the same units.
          viewdirs: [..., 3] unit view directions (only with `color`).
          appearance: as `MLP`'s.

        Returns:
          As `MLP`: density [..., S]; rgb [..., S, 3] or None.
        """
        x = jnp.mean(self.encoding(points, scales), axis=-2)
        for i in range(self.depth):
            x = nn.relu(dense_layer(self.width, f"layer_{i}", self.dtype)(x))
        return density_and_color(self, x, viewdirs, appearance)


def per_ray(keys, batch_shape, draw):
    """`draw(key)` for each ray's own key of `keys` (shape `batch_shape`; raw uint32 keys:
    `batch_shape + (2,)`), each output (a pytree) given the leading shape `batch_shape`. A ray's
    draws then do not depend on the other rays of its batch: a micro-batch of a batch draws
    exactly as the whole batch does."""
    flat = keys.reshape((-1,) + keys.shape[len(batch_shape):])
    return jax.tree.map(lambda x: x.reshape(tuple(batch_shape) + x.shape[1:]), jax.vmap(draw)(flat))


def ray_jitter(keys, batch_shape, rounds: int) -> jnp.ndarray:
    """Each ray's stratified-sampling offsets in [0, 1), one per round, drawn from the ray's own
    key (`per_ray`).

    Args:
      keys: `jax.random` keys of shape `batch_shape` (raw uint32 keys: `batch_shape + (2,)`).

    Returns:
      batch_shape + (rounds,).
    """
    return per_ray(keys, batch_shape, lambda k: jax.random.uniform(k, (rounds,), maxval=1 - jnp.finfo(jnp.float32).eps))


def fold_keys(keys, batch_shape, data: int):
    """Each ray's key of `keys` (as `per_ray`'s) folded with `data`: independent draws for another
    use, still each ray's own."""
    return per_ray(keys, batch_shape, lambda k: jax.random.fold_in(k, data))


class Round(NamedTuple):
    """One sampling round of a batch of rays: breakpoints in normalised distance and weights.

    s: [..., S+1] in [0, 1]; t: [..., S+1] the same breakpoints in metric distance
    (`coord.s_to_t`); weights: [..., S].
    """

    s: jnp.ndarray
    t: jnp.ndarray
    weights: jnp.ndarray


class MipNerf360(nn.Module):
    """Proposal rounds (density only) that resample finer intervals, then the NeRF round.

    The fields, the proposal rounds' (one shared by every round, or one per round) and the NeRF
    round's, are of one kind of `FIELDS` (MLPs over IPE, or hash-grid fields): modules with
    `inputs(rays, t, contraction, cylinder, keys)` (keys: each ray's, for draws the field makes in
    training; None in evaluation), `decay(params)` and `__call__(*inputs, viewdirs, appearance)`. Their parameters are under the names they were built with (`prop_mlp`,
    `prop_grid_0`, `nerf_grid`, ...), not the fields' here.
    """

    preserve_adopted_names = True  # flax: the fields' parameters keep the fields' own names

    num_prop_samples: Sequence[int]
    num_nerf_samples: int
    prop_fields: Sequence[nn.Module]  # one shared by the proposal rounds, or one per round
    nerf_field: nn.Module
    anneal_slope: float = 10.0
    resample_padding: float = 0.0
    dilation_multiplier: float = 0.5
    dilation_bias: float = 0.0025
    ray_spacing: str = "linear"  # how s maps to t: "linear", "disparity" or "power_ladder" (coord.s_to_t)
    spacing_power: float = -1.5  # the power ladder's p and premult (ray_spacing="power_ladder")
    spacing_premult: float = 2.0
    contraction: bool = False  # push the Gaussians through mip-NeRF 360's contraction
    cylinder: bool = False  # cylinders rather than cones (NDC rays)
    opaque_background: bool = False  # the last interval is opaque: nothing shows behind the scene
    num_images: int = 0  # training images, for the per-image appearance tables
    appearance_dim: int = 0  # a learned vector per training image for the NeRF field's colour (0: none)
    appearance_affine: bool = False  # a learned 3x3 matrix and bias per training image on the rendered colour

    def appearance_vectors(self, image, batch_shape):
        """[*batch_shape, appearance_dim]: each ray's training image's vector, or with `image` None
        the mean of the training images' vectors (a view that is not a training image)."""
        table = self.param("appearance", nn.initializers.zeros, (self.num_images, self.appearance_dim), jnp.float32)
        if image is None:
            return jnp.broadcast_to(jnp.mean(table, axis=0), tuple(batch_shape) + (self.appearance_dim,))
        return table[image]

    def color_transform(self, rgb, image):
        """The rendered colours rgb [..., 3] through each ray's training image's affine colour
        transform (`appearance_affine`), or with `image` None through the mean of the training
        images' transforms: the field's colours and the transforms share a common factor that no
        image sees, and the mean is the one look of the training images that does not depend on it."""
        identity = jnp.concatenate([jnp.eye(3), jnp.zeros((3, 1))], axis=1)
        table = self.param("color_transform", lambda key, shape, dtype: jnp.broadcast_to(identity, shape).astype(dtype),
                           (self.num_images, 3, 4), jnp.float32)
        m = jnp.mean(table, axis=0) if image is None else table[image]
        return jnp.einsum("...ij,...j->...i", m[..., :3], rgb) + m[..., 3]

    @nn.compact
    def __call__(self, key, rays: Rays, train_frac, background, image=None):
        """Renders a batch of rays.

        Args:
          key: `jax.random` keys, one per ray ([B], e.g. `jax.random.split(key, B)`), for
            jittered sampling (training), or None for deterministic sampling (evaluation).
          rays: `Rays` with leading shape [B].
          train_frac: scalar in [0, 1], the fraction of training done (anneals the proposals).
          background: [3] colour behind the scene.
          image: [B] int, each ray's training image (for per-image appearance), or None for a
            view that is not a training image: the mean appearance vector and colour transform.

        Returns:
          (`volume.Composite` of the NeRF round, list of every round's `Round`, the last being
          the NeRF round's).
        """
        batch_shape = rays.origins.shape[:-1]
        s = jnp.broadcast_to(jnp.array([0.0, 1.0]), batch_shape + (2,))
        w = jnp.ones(batch_shape + (1,))
        num_samples = list(self.num_prop_samples) + [self.num_nerf_samples]
        power = stepfun.anneal_power(train_frac, self.anneal_slope) if key is not None else 1.0
        jitter = None if key is None else ray_jitter(key, batch_shape, len(num_samples))
        appearance = self.appearance_vectors(image, batch_shape) if self.appearance_dim else None
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
            round_jitter = None if jitter is None else jitter[..., i:i + 1]
            s = jax.lax.stop_gradient(stepfun.sample_intervals(round_jitter, s, jax.lax.stop_gradient(w), n))
            t = coord.s_to_t(s, rays.near, rays.far, self.ray_spacing, self.spacing_power, self.spacing_premult)
            last = i == len(num_samples) - 1
            field = self.nerf_field if last else self.prop_fields[i % len(self.prop_fields)]
            # The proposal rounds only place samples: the rays' gradient (pose refinement) is the NeRF round's.
            round_rays = rays if last else jax.tree.map(jax.lax.stop_gradient, rays)
            draws = key is not None and getattr(field, "multisample_rotation", False)
            round_keys = fold_keys(key, batch_shape, i) if draws else None
            inputs = field.inputs(round_rays, t, self.contraction, self.cylinder, round_keys)
            density, rgb = field(*inputs, rays.viewdirs, appearance) if last else field(*inputs)
            w = volume.compute_weights(density, t, round_rays.directions, opaque=self.opaque_background)
            rounds.append(Round(s=s, t=t, weights=w))
        out = volume.composite(w, rgb, t, background)
        if self.appearance_affine:
            out = out._replace(rgb=self.color_transform(out.rgb, image))
        return out, rounds


    def nerf_density(self, points: jnp.ndarray, size: jnp.ndarray) -> jnp.ndarray:
        """The NeRF round's density [...] at world points [..., 3], each seen as a cell of about
        `size` [...] a side: a short, narrow frustum along +z centred on the point, encoded as any
        interval is (IPE, contraction, or a grid's multisamples). For meshes (`mesh.py`); call
        with `model.apply(params, points, size, method=MipNerf360.nerf_density)`."""
        far = 1e3 * size  # so far back that the cone is a cylinder of radius `size` / 2 across the cell
        direction = jnp.broadcast_to(jnp.array([0.0, 0.0, 1.0]), points.shape)
        rays = Rays(origins=points - far[..., None] * direction, directions=direction, viewdirs=direction,
                    radii=(0.5 * size / far)[..., None], near=far[..., None], far=far[..., None])
        t = jnp.stack([far - 0.5 * size, far + 0.5 * size], axis=-1)
        inputs = self.nerf_field.inputs(rays, t, self.contraction, self.cylinder)
        density, _ = self.nerf_field(*inputs, direction)
        return density[..., 0]


def weight_decay(model: MipNerf360, params) -> jnp.ndarray:
    """The loss term of the model's fields' own weight decay (each field's `decay`), of the model's
    parameters `params`: Zip-NeRF's of the hash grids; none of MLPs."""
    fields = tuple(model.prop_fields) + (model.nerf_field,)
    return sum((field.decay(params["params"][field.name]) for field in fields), jnp.float32(0))


def background_color(config: ml_collections.ConfigDict) -> jnp.ndarray:
    """[3] the colour behind the scene outside training: white with `white_background`, else black;
    grey (0.5) with `background="random"`, the mean of training's random colours."""
    if config.background == "random":
        return jnp.full(3, 0.5)
    return jnp.ones(3) if config.white_background else jnp.zeros(3)


def training_background(config: ml_collections.ConfigDict, key, rays: int) -> jnp.ndarray:
    """[rays, 3] each training ray's background: `background_color`, or with `background="random"` a
    colour drawn uniformly in [0, 1]^3 for each ray (Zip-NeRF's), so that any ray the field leaves
    transparent costs noise: where the images have no alpha, the field learns to be opaque itself."""
    if config.background == "random":
        return jax.random.uniform(key, (rays, 3))
    return jnp.broadcast_to(background_color(config), (rays, 3))


# The training image of `init_args`'s one ray, so that every table is made. numpy: a jax array
# made at import would start the backend before `jax.distributed.initialize`.
_INIT_IMAGE = np.zeros((1,), np.int32)


def init_args(config: ml_collections.ConfigDict, key) -> tuple:
    """The arguments after the key of `model.init(key, *init_args(config, key))`: one ray, jittered
    with keys from `key`, of the config's near and far, seen from training image 0."""
    ones = lambda width: jnp.ones((1, width))
    look = jnp.array([[0.0, 0.0, -1.0]])
    rays = Rays(origins=0 * ones(3), directions=look, viewdirs=look, radii=0 * ones(1), near=config.near * ones(1),
                far=config.far * ones(1))
    return jax.random.split(key, 1), rays, 0.0, background_color(config), _INIT_IMAGE


def compute_dtype(precision: str) -> jnp.dtype:
    """The matmul dtype of a precision policy: "bf16", "f32", or "auto" (bf16 on GPU/TPU, f32 on CPU)."""
    if precision == "auto":
        precision = "f32" if jax.default_backend() == "cpu" else "bf16"
    return jnp.bfloat16 if precision == "bf16" else jnp.float32


def rematerialised(field_class, remat: bool):
    """`field_class`, or with `remat` the same module under `nn.remat`: its backward pass keeps
    only the matmuls' outputs from the forward pass and recomputes the rest (the encoding, the
    biases and activations, elementwise work), rather than the matmuls too. The parameters are
    the same either way."""
    policy = jax.checkpoint_policies.dots_with_no_batch_dims_saveable
    return nn.remat(field_class, policy=policy) if remat else field_class


def build_grid_fields(config: ml_collections.ConfigDict, dtype) -> tuple[tuple[nn.Module, ...], nn.Module]:
    """The proposal hash-grid fields (one shared by the rounds, or with `prop_grid_round_max_res` one
    per round) and the NeRF round's, of a config with `field="grid"`."""
    common = dict(width=config.grid_width, depth=config.grid_depth, density_bias=config.density_bias,
                  density_activation=config.density_activation, bound=config.grid_bound,
                  multisample_rotation=config.grid_multisample_rotation,
                  multisample_scale=config.grid_multisample_scale, decay_mult=config.grid_decay_mult, dtype=dtype)
    encoding = lambda levels, table_log2, features, max_res: grid.HashEncoding(
        levels, table_log2, features, config.grid_min_res, max_res, config.grid_table_scale, config.grid_append_scale)
    field = rematerialised(GridField, config.remat)
    prop_features = config.prop_grid_features or config.grid_features
    prop = lambda levels, max_res, name: field(
        encoding(levels, config.prop_grid_table_log2, prop_features, max_res),
        multisamples=config.prop_grid_multisamples, name=name, **common)
    if config.prop_grid_round_max_res:
        props = tuple(prop(grid.octave_levels(config.grid_min_res, max_res), max_res, f"prop_grid_{i}")
                      for i, max_res in enumerate(config.prop_grid_round_max_res))
    else:
        props = (prop(config.prop_grid_levels, config.prop_grid_max_res, "prop_grid"),)
    nerf = field(encoding(config.grid_levels, config.grid_table_log2, config.grid_features, config.grid_max_res),
                 multisamples=config.grid_multisamples, color=True, **color_settings(config), name="nerf_grid",
                 **common)
    return props, nerf


def color_settings(config: ml_collections.ConfigDict) -> dict:
    """The NeRF field's colour-branch settings, the same for either kind of field."""
    return dict(bottleneck_width=config.bottleneck_width, view_depth=config.view_depth, view_width=config.view_width,
                view_skip_layer=config.view_skip_layer, deg_view=config.deg_view, rgb_padding=config.rgb_padding,
                appearance_dim=config.appearance_dim)


def build_model(config: ml_collections.ConfigDict, num_images: int = 0) -> MipNerf360:
    """The model a config describes; `num_images`, the number of training images, is needed with
    per-image appearance (`appearance_dim`, `appearance_affine`) only."""
    if (config.appearance_dim or config.appearance_affine) and not num_images:
        raise ConfigError("config.appearance_dim / appearance_affine: expected the number of training images")
    prop_fields, nerf_field = FIELDS[config.field].build(config, compute_dtype(config.precision))
    return MipNerf360(
        num_prop_samples=tuple(config.num_prop_samples), num_nerf_samples=config.num_nerf_samples,
        prop_fields=prop_fields, nerf_field=nerf_field, anneal_slope=config.anneal_slope,
        resample_padding=config.resample_padding, dilation_multiplier=config.dilation_multiplier,
        dilation_bias=config.dilation_bias, ray_spacing=config.ray_spacing, spacing_power=config.ray_spacing_power,
        spacing_premult=config.ray_spacing_premult, contraction=config.contraction,
        cylinder=config.forward_facing, opaque_background=config.opaque_background,
        num_images=num_images, appearance_dim=config.appearance_dim, appearance_affine=config.appearance_affine)


def build_mlp_fields(config: ml_collections.ConfigDict, dtype) -> tuple[tuple[nn.Module], nn.Module]:
    """The proposal MLP (shared by the rounds) and the NeRF MLP of a config with `field="mlp"`."""
    common = dict(skip_layer=config.skip_layer, min_deg_point=config.min_deg_point,
                  max_deg_point=config.max_deg_point, density_bias=config.density_bias,
                  density_activation=config.density_activation, disable_integration=config.disable_integration,
                  basis=config.basis, dtype=dtype)
    mlp = rematerialised(MLP, config.remat)
    prop = mlp(depth=config.prop_depth, width=config.prop_width, name="prop_mlp", **common)
    nerf = mlp(depth=config.nerf_depth, width=config.nerf_width, color=True, **color_settings(config),
               name="nerf_mlp", **common)
    return (prop,), nerf


class FieldKind(NamedTuple):
    """A kind of field (`config.field`): `build(config, dtype)` makes a config's proposal and NeRF
    fields; `settings` are the config fields that this kind alone reads, which a config that
    chooses another kind refuses (`config_checks`)."""

    build: Callable[[ml_collections.ConfigDict, jnp.dtype], tuple[tuple[nn.Module, ...], nn.Module]]
    settings: tuple[str, ...]


FIELDS = {
    "mlp": FieldKind(build_mlp_fields, ("prop_depth", "prop_width", "nerf_depth", "nerf_width", "skip_layer",
                                        "min_deg_point", "max_deg_point", "basis", "disable_integration")),
    "grid": FieldKind(build_grid_fields, ("grid_levels", "grid_table_log2", "grid_features", "grid_min_res",
                                          "grid_max_res", "grid_multisamples", "prop_grid_levels",
                                          "prop_grid_table_log2", "prop_grid_max_res", "prop_grid_multisamples",
                                          "grid_width", "grid_depth", "grid_bound", "grid_decay_mult",
                                          "grid_table_scale", "grid_append_scale", "prop_grid_features",
                                          "prop_grid_round_max_res", "grid_multisample_rotation",
                                          "grid_multisample_scale")),
}
