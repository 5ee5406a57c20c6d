"""Training: the images on the devices and the draw of a batch (`train_images`), the jitted update
(`update`), the optimizers (`optimizer`), the refined cameras written out (`pose_export`), and the
devices and hosts a run uses (`distributed`).
"""
