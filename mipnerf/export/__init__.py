"""Geometry out of a trained model: coloured point clouds (`point_cloud`) and meshes (`mesh`).
"""
