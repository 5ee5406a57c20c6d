"""Serves a trained run in the browser: fly through the scene, click the training cameras, make
camera paths for render.py.

    python view.py --config.exp_dir=exp/demo
    python view.py --config=configs/blender.py --config.exp_dir=exp/lego --config.viewer_port=8081

Restores the newest whole checkpoint; the model and scene come from the run's exp_dir/config.json,
as for eval.py. Prints the address to open (http://localhost:8080) and serves until Ctrl-C.

Where the run has splats (exp_dir/export/splats.ply, from `export.py --config.export=splats`), the
page shows them first, drawn by the browser at its own frame rate; the "Show" control switches to
the NeRF's render of the same camera (rendered here, progressively) and back.
"""

import sys

from mipnerf.commands.cli import define_config, explicit_fields, run

_CONFIG = define_config()


def main(argv):
    del argv
    from mipnerf.commands import view

    view.serve(_CONFIG.value, explicit=explicit_fields(sys.argv))


if __name__ == "__main__":
    run(main)
