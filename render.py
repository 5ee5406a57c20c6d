"""Renders colour and depth videos of a trained run along a camera path around the scene.

    python render.py --config=configs/demo.py
    python render.py --config=configs/demo.py --config.render_path=orbit --config.render_factor=2

Use the config and exp_dir of training. Writes exp_dir/render/{spiral,orbit}_{color,depth}.{mp4,gif}.
"""

from mipnerf.cli import define_config, run

_CONFIG = define_config()


def main(argv):
    del argv
    from mipnerf import video_render

    video_render.render_video(_CONFIG.value)


if __name__ == "__main__":
    run(main)
