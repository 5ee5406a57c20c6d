"""Whole views from a restored model, needing no optimizer: rendering in chunks of pixels
(`rendering`), video and depth images (`video`), and eval's fit of test poses (`pose_fit`); 3D
Gaussians (`gaussians`), drawn by the differentiable tile rasteriser (`rasterize`) or, to look at
them on a CPU, by compiled loops (`rasterize_cpu`), and read and written in 3DGS's file layout
(`splat_file`).
"""
