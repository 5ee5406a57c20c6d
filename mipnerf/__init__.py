"""mipnerf: mip-NeRF 360-style neural radiance fields in JAX and Flax."""
