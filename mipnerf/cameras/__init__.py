"""Cameras and their frames: intrinsics, lens distortion and cone-cast rays (`camera`), the frame
conventions (`conventions`), orbits and camera paths (`orbits`), camera path files (`path_files`) and the
training cameras' pose corrections (`pose_refine`).
"""
