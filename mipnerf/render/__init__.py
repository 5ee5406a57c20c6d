"""Whole views from a restored model, needing no optimizer: rendering in chunks of pixels
(`rendering`), video and depth images (`video`), and eval's fit of test poses (`pose_fit`).
"""
