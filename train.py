"""Trains a mip-NeRF 360 model.

    python train.py --config=configs/blender.py --config.data_dir=PATH/nerf_synthetic/lego
    python train.py --config=configs/demo.py   # the built-in scene, minutes on a CPU

Running the same command again resumes from the latest checkpoint in --config.exp_dir.
A multi-host run starts this command on every host, adding
--config.coordinator_address=HOST0:PORT --config.num_processes=N --config.process_id=I.
"""

import sys

from mipnerf.commands.cli import define_config, explicit_fields, run

_CONFIG = define_config()


def main(argv):
    del argv
    from mipnerf.commands import train
    from mipnerf.training import distributed

    distributed.initialize(_CONFIG.value)
    train.train(_CONFIG.value, explicit=explicit_fields(sys.argv))


if __name__ == "__main__":
    run(main)
