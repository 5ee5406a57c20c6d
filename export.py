"""Exports a trained run's geometry for other tools: a coloured point cloud or a mesh.

    python export.py --config.exp_dir=exp/demo --config.export=pointcloud
    python export.py --config.exp_dir=exp/demo --config.export=mesh --config.export_obj=True

The model and scene come from the run's exp_dir/config.json, as for eval.py. Writes
exp_dir/export/pointcloud.ply, or mesh.ply (and mesh.obj).
"""

import sys

from mipnerf.commands.cli import define_config, explicit_fields, run

_CONFIG = define_config()


def main(argv):
    del argv
    from mipnerf.commands import export

    export.export(_CONFIG.value, explicit=explicit_fields(sys.argv))


if __name__ == "__main__":
    run(main)
