"""Renders colour and depth videos of a trained run along a camera path around the scene.

    python render.py --config=configs/demo.py
    python render.py --config=configs/demo.py --config.render_path=orbit --config.render_factor=2
    python render.py --config.exp_dir=RUN --config.render_path=file --config.render_path_file=PATH.json

The model and scene come from the run's exp_dir/config.json, so `--config.exp_dir=exp/lego`
alone is enough; a model flag that differs from the run's is an error.
Writes exp_dir/render/{path}_{color,depth}.{mp4,gif} ({path}: the camera path file's stem with render_path=file).
"""

import sys

from mipnerf.commands.cli import define_config, explicit_fields, run

_CONFIG = define_config()


def main(argv):
    del argv
    from mipnerf.commands import render

    render.render_video(_CONFIG.value, explicit=explicit_fields(sys.argv))


if __name__ == "__main__":
    run(main)
