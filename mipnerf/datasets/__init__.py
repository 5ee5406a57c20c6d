"""Dataset loaders: the Blender (nerf_synthetic) format and the built-in demo scene."""
