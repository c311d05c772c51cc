"""`ssljax-train` / `python -m ssljax.main`: pretrain from a config file.

  ssljax-train --config=configs/quickstart.py --workdir=/tmp/qs
  ssljax-train --config=configs/vicreg_resnet50_imagenet.py \\
      --config.data.data_dir=gs://bucket/tfds --workdir=gs://bucket/run1 \\
      --multiprocess

A workdir that holds checkpoints is resumed from its newest one.
"""

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from ssljax import train

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file (Python, get_config(arg=None)).",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Checkpoints, metrics and summary.")
flags.DEFINE_bool("override_config", False,
                  "Resume even if the workdir's config differs.")
flags.DEFINE_bool("multiprocess", False,
                  "Call jax.distributed.initialize() (TPU pods, SLURM and "
                  "GPU clusters autodetect; else pass the three flags below).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0.")
flags.DEFINE_integer("num_processes", None, "Processes in the job.")
flags.DEFINE_integer("process_id", None, "This process' index.")
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def initialize_distributed():
  if FLAGS.coordinator_address or FLAGS.multiprocess:
    jax.distributed.initialize(
        coordinator_address=FLAGS.coordinator_address,
        num_processes=FLAGS.num_processes, process_id=FLAGS.process_id)
    logging.info("Process %d of %d, %d local / %d global devices.",
                 jax.process_index(), jax.process_count(),
                 jax.local_device_count(), jax.device_count())


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  initialize_distributed()
  train.train_and_evaluate(_CONFIG.value, FLAGS.workdir,
                           override_config=FLAGS.override_config)


def run():
  app.run(main)


if __name__ == "__main__":
  run()
