"""The built-in scenes, rendered by the package and written in the real on-disk formats: `demo`
(Blender), `demo360` (COLMAP and transforms.json), sharing a ray tracer (`raytrace`) and a cache (`scene_cache`).
"""
