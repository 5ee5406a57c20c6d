"""Every config field at its default: the published mip-NeRF 360 "blender_256" settings where the
paper sets one (configs/blender.py adds nothing else). Each config file starts from here and sets
what its dataset family or machine changes; every field is documented here.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()

    # Data.
    # "blender": a nerf_synthetic folder; "colmap": a capture posed by COLMAP (mip-NeRF 360 / LLFF layout);
    # "transforms": a capture described by a transforms.json (nerfstudio, Instant-NGP);
    # "multiscale": mip-NeRF's multiscale Blender format;
    # "demo", "demo360", "transforms", "multiscale": the built-in scenes in those formats, used when data_dir is empty.
    c.dataset = "blender"
    # The scene folder: transforms_{train,val,test}.json, images/ with sparse/0/ or poses_bounds.npy, or transforms.json.
    c.data_dir = ""
    c.exp_dir = "exp/blender"  # everything a run writes: config.json, checkpoints/, tb/, eval/, render/
    c.factor = 1  # integer image downsampling by area averaging (2 = the usual half resolution)
    c.near = 2.0
    c.far = 6.0
    c.white_background = True
    c.llffhold = 8  # captures: every llffhold-th image sorted by name is a test view (0: all train)
    c.forward_facing = False  # captures: a forward-facing (LLFF) scene: its frame, NDC rays, cylinders

    # Scene model: a bounded object (Blender) or an unbounded capture (mip-NeRF 360).
    # "linear" | "disparity" | "power_ladder": how sampling's s in [0, 1] maps to distance in [near, far]
    # (s is linear in t, in 1/t, or in Zip-NeRF's power ladder of t: linear near the camera, 1/t far away).
    c.ray_spacing = "linear"
    c.ray_spacing_power = -1.5  # power_ladder: its p and premult (Zip-NeRF's raydist_fn)
    c.ray_spacing_premult = 2.0
    c.contraction = False  # push the Gaussians through mip-NeRF 360's contraction into a ball of radius 2
    c.basis = "axes"  # "axes" | "octahedron" | "icosahedron": directions the Gaussians are projected on for IPE
    c.opaque_background = False  # the last interval is opaque: real captures have no background
    # "fixed": white_background's colour behind the scene; "random" (Zip-NeRF's): a random colour behind
    # each training ray and grey outside training, for images without alpha (captures), so that the
    # field learns to be opaque where the scene is, rather than being made so (opaque_background).
    c.background = "fixed"
    c.disable_integration = False  # ablation: NeRF's positional encoding of the Gaussians' means instead of IPE

    # Sampling rounds: proposal rounds (density only), then the NeRF round.
    c.num_prop_samples = (128,)
    c.num_nerf_samples = 32
    c.anneal_slope = 10.0  # proposal weights raised to a power that rises from 0 to 1 over training
    c.resample_padding = 0.0
    c.dilation_multiplier = 0.5  # dilation of the proposal step function, in normalised distance
    c.dilation_bias = 0.0025

    # Networks.
    c.min_deg_point = 0  # integrated positional encoding degrees [min, max)
    c.max_deg_point = 16
    c.prop_depth = 4
    c.prop_width = 256
    c.nerf_depth = 8
    c.nerf_width = 256
    c.skip_layer = 4  # the encoded input is concatenated again after every this many layers
    c.bottleneck_width = 256
    c.view_depth = 1
    c.view_width = 128
    c.view_skip_layer = 0  # the view MLP's input again after its layer i when i % view_skip_layer == 0, i > 0 (0: none)
    c.deg_view = 4  # positional encoding degrees of the view direction
    c.density_bias = -1.0  # density = activation(raw + density_bias)
    c.density_activation = "softplus"  # "softplus" | "exp" (Zip-NeRF's)
    c.rgb_padding = 0.001  # rgb = sigmoid(raw) * (1 + 2 pad) - pad
    c.precision = "auto"  # "bf16" | "f32" | "auto" (bf16 on GPU, f32 on CPU)

    # Field: "mlp" (the MLPs above over IPE) or "grid" (hash grids with small MLPs, Zip-NeRF-style;
    # bottleneck_width, view_depth, view_width, deg_view and density_bias apply to it too).
    c.field = "mlp"
    c.grid_levels = 16  # the NeRF round's grid: levels from grid_min_res to grid_max_res cells per side
    c.grid_table_log2 = 19  # entries per level's table: 2^grid_table_log2 (finer levels hash into it)
    c.grid_features = 2  # features per level
    c.grid_multisamples = 6  # points per frustum: 6 (Zip-NeRF's pattern, matching its Gaussian) or 1 (its mean)
    c.grid_multisample_rotation = False  # turn each frustum's 6 points about the ray: randomly in training (Zip-NeRF)
    c.grid_multisample_scale = 1.0  # each point's scale, in radial standard deviations (Zip-NeRF: about 0.71)
    c.grid_min_res = 16
    c.grid_max_res = 2048
    c.prop_grid_levels = 5  # the proposal rounds' grid (density only)
    c.prop_grid_table_log2 = 17
    c.prop_grid_max_res = 256
    c.prop_grid_multisamples = 6
    c.grid_width = 64  # the MLP after each grid: grid_depth layers of grid_width
    c.grid_depth = 1
    c.grid_bound = 1.5  # without contraction the grids span [-grid_bound, grid_bound]^3 (with it, [-2, 2]^3)
    c.grid_decay_mult = 0.1  # weight decay of the grid tables: sum over levels of the mean squared (stored) entry
    c.grid_table_scale = 1.0  # tables store features / this, and the output multiplies back (Zip-NeRF: 10)
    c.grid_append_scale = False  # each level also gives its scale weight as a feature (Zip-NeRF)
    c.prop_grid_features = 0  # features per level of the proposal grids (0: grid_features)
    # One proposal grid per round, with these finest resolutions (one per round; Zip-NeRF: 512 and 2048), each
    # with levels a factor 2 apart from grid_min_res as Zip-NeRF's; (): one grid shared by the rounds.
    c.prop_grid_round_max_res = ()

    # Optimisation.
    c.batch_size = 16384  # rays per step, over all devices
    # Memory of a step (see README, "The memory of a training step"); neither changes the update.
    # 2 micro-batches: the step at batch 16384 needs 13.5 GB of temporaries in bf16 (27.0 GB in one), so it
    # fits a 24 GB GPU (benchmarks/memory.py --step).
    c.grad_accum = 2  # the batch in this many micro-batches whose gradients are summed: activations / grad_accum
    c.remat = False  # the backward pass recomputes each field's encoding and activations from its matmuls' outputs
    c.max_steps = 250_000
    c.lr_init = 2e-3
    c.lr_final = 2e-5
    c.lr_delay_steps = 512  # warm-up: the learning rate starts at lr_delay_mult * lr and eases in
    c.lr_delay_mult = 0.01
    c.adam_beta1 = 0.9
    c.adam_beta2 = 0.999
    c.adam_eps = 1e-8
    c.grad_max_norm = 0.001  # clip each MLP's gradient by its global norm (0 disables)
    c.data_loss = "mse"  # "mse" | "charbonnier"
    c.multiscale_loss = True  # weight each ray's data loss by its image's lossmult (multiscale scenes)
    c.charbonnier_padding = 0.001
    # "outer": mip-NeRF 360's proposal loss (NeRF weights bounded by the proposal's outer measure, summed
    # over intervals); "blurred": Zip-NeRF's anti-aliased one (NeRF weights blurred along the ray by a box
    # of half-width interlevel_blurs[round], in s, resampled onto the proposal's intervals; a mean over them).
    c.interlevel_loss = "outer"
    c.interlevel_blurs = (0.03, 0.003)  # blurred: one half-width per proposal round
    c.interlevel_loss_mult = 1.0  # per proposal round (Zip-NeRF's blurred loss: 0.01)
    c.distortion_loss_mult = 0.0
    # The distance along the ray the distortion loss measures: "s" (mip-NeRF 360's normalised distance) or
    # "power_ladder" (Zip-NeRF's: power_ladder(t, distortion_power, distortion_premult) of the metric distance).
    c.distortion_distance = "s"
    c.distortion_power = -0.25
    c.distortion_premult = 1e4

    # Camera pose refinement (captures): a learned rotation and translation per training camera,
    # applied in the camera's frame before its rays are cast (see README, "Pose refinement"). Focal
    # lengths and distortion stay as loaded; test and val views are rendered with their given poses.
    c.pose_refine = False
    c.pose_lr_init = 1e-3  # Adam; log-linear decay to pose_lr_final at max_steps (nerfacto starts at 1e-3)
    c.pose_lr_final = 1e-5
    c.pose_warmup_steps = 1000  # the corrections stay frozen (learning rate 0) until the field has settled
    c.pose_decay = 1e-2  # decoupled weight decay towards the loaded pose (AdamW's, scaled by the learning rate)
    # eval.py of a run with pose_refine also scores each test view after fitting its pose to its
    # image for this many steps of eval_pose_batch pixels, the model frozen (0: only the poses as given).
    c.eval_pose_steps = 200
    c.eval_pose_batch = 256  # pixels a fit step (every pixel of a smaller view); see README, "Pose refinement"

    # Per-image appearance (captures whose exposure or white balance varies; see README, "Per-image
    # appearance"). Views that are not training images use the mean vector and no transform.
    c.appearance_dim = 0  # length of a learned vector per training image fed to the NeRF field's colour branch (0: off)
    c.appearance_affine = False  # a learned 3x3 matrix and bias per training image applied to the rendered colour

    # Run.
    c.seed = 0
    c.checkpoint_every = 5000
    c.keep_checkpoints = 3
    c.log_every = 100  # steps between progress and tensorboard scalars
    c.val_every = 5000  # steps between rendered validation views in tensorboard (0 disables)
    c.render_chunk = 8192  # rays per jitted render call (lower it if rendering runs out of memory)

    # Multi-host training (train.py): every process runs the same command with its own process_id.
    c.coordinator_address = ""  # "host:port" of process 0 (default: $JAX_COORDINATOR_ADDRESS)
    c.num_processes = 0  # 0: $JAX_NUM_PROCESSES, else a single process
    c.process_id = -1  # -1: $JAX_PROCESS_ID

    # The web viewer (view.py, and train.py with viewer=True): http://localhost:viewer_port.
    c.viewer = False  # train.py: serve the viewer while training (renders happen between steps)
    c.viewer_port = 8080  # 0: any free port
    c.viewer_host = "127.0.0.1"  # "0.0.0.0" to let other machines connect

    # Geometry out (export.py): exp_dir/export/pointcloud.ply or mesh.ply, in the model's frame;
    # splats.ply, 3D Gaussians distilled from the NeRF, in the capture's frame (3DGS's layout).
    c.export = "pointcloud"  # "pointcloud" | "mesh" | "splats"
    c.export_points = 1_000_000  # at most this many points (a random subset beyond)
    c.export_views = 0  # training views rendered for the point cloud, evenly spread (0: all)
    c.export_bound = 0.0  # half-width of the cube kept, about the cameras' centre (0: the region they look at)
    c.export_resolution = 256  # mesh: density grid cells per side
    c.export_level = 10.0  # mesh: the density of the surface (per unit length of the model's frame)
    c.export_obj = False  # mesh: also write mesh.obj
    c.export_splats = 1_000_000  # splats: the budget, at most this many Gaussians
    c.splat_steps = 30_000  # splats: optimisation steps, one view each (3DGS's schedule)
    c.splat_sh_degree = 3  # splats: spherical-harmonic degree of the colours (0: no view dependence)
    c.splat_sh_every = 1000  # splats: steps between turning on each further band
    c.splat_extra_views = 1.0  # splats: NeRF-rendered cameras between the training ones, per training camera

    # Evaluation (eval.py) and videos (render.py).
    c.eval_step = 0  # checkpoint step that eval, render, view and export restore (0: the latest)
    c.eval_splats = False  # eval.py: score exp_dir/export/splats.ply (export.py --config.export=splats) too
    c.eval_lpips = True  # eval.py: also score LPIPS (AlexNet and VGG); False for a quicker eval on a slow machine
    # "spiral" | "orbit" | "ellipse" | "zoom": a camera path around the training cameras' centre;
    # "file": the camera path file render_path_file.
    c.render_path = "spiral"
    c.render_path_file = ""  # render_path=file: a camera path JSON (the viewer's, or nerfstudio's camera_path.json)
    c.render_frames = 120
    c.render_fps = 30
    c.render_factor = 1  # extra downsampling of the video frames, for quick previews
    return c
