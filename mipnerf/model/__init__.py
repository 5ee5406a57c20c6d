"""The model: frustum Gaussians, contraction and encodings (`coord`), step functions, sampling and
the interlevel and distortion losses (`stepfun`), compositing (`volume`), hash grids (`grid`), and
the fields and the mip-NeRF 360 model built from them (`mipnerf360`).
"""
