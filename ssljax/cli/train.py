"""`ssljax-train` / `python -m ssljax.cli.train`: pretrain from a config file.

  ssljax-train --config=configs/quickstart.py --workdir=/tmp/qs
  ssljax-train --config=configs/vicreg_resnet50_imagenet.py \\
      --config.data.data_dir=gs://bucket/tfds --workdir=gs://bucket/run1 \\
      --multiprocess

A workdir that holds checkpoints is resumed from its newest one.

Exit codes (`ssljax.cli.common`): 0 done; 1 an error (one line saying what to
do; --traceback for the whole trace); 2 a bad command line (e.g. a
misspelled config field, with the closest valid fields); 75 stopped by
SIGTERM / SIGINT after checkpointing (run the same command again to
resume). Library INFO logs (orbax, tensorstore, jax) are hidden unless
--verbosity=1 or higher; ssljax's own INFO lines and every warning show.
"""

if __name__ == "__main__":  # python -m ssljax.cli.train: see entry.py
  from ssljax import preemption  # pylint: disable=g-import-not-at-top
  preemption.install()

import sys  # pylint: disable=g-import-not-at-top

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
from jax.experimental import multihost_utils
from ml_collections import config_flags
import numpy as np

from ssljax import runtime
from ssljax import train
from ssljax.cli import common
from ssljax.cli import flagparse
from ssljax.data import pipeline

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file (Python, get_config(arg=None)).",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Checkpoints, metrics and summary.")
flags.DEFINE_bool("override_config", False,
                  "Resume even if the workdir's config differs.")
flags.DEFINE_bool("force_lock", False,
                  "Take over the workdir's lock.json even if its owner looks "
                  "alive (only when you know that run is dead).")
flags.DEFINE_bool("traceback", False,
                  "On an error, print the whole traceback, not one line.")
flags.DEFINE_bool("multiprocess", False,
                  "Call jax.distributed.initialize() (TPU pods, SLURM and "
                  "GPU clusters autodetect; else pass the three flags below).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0.")
flags.DEFINE_integer("num_processes", None, "Processes in the job.")
flags.DEFINE_integer("process_id", None, "This process' index.")
flags.DEFINE_string("compilation_cache", runtime.default_compilation_cache(),
                    "Persistent XLA compilation cache folder (local or "
                    "gs://; empty: off).")
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
    connect_cpu_collectives()


def connect_cpu_collectives():
  """Open the CPU collectives' connections between processes now.

  On CPU, XLA's Gloo collectives connect the processes at the first program
  that reduces over all devices, and give up if a peer is not there within
  30 s. Processes drift apart by more than that before the first train step
  when a shared machine makes one compile or load data slower (seen in CI:
  "Gloo context initialization failed: GetKeyValue() timed out"). Right
  after `jax.distributed.initialize` they are in step, so one small sum
  over the training mesh and one host gather here open the connections
  that every later program over the same device groups reuses, whose
  operations then wait for slow peers as long as needed. GPU (NCCL) and
  TPU (ICI) need none of this.
  """
  if jax.process_count() == 1 or jax.default_backend() != "cpu":
    return
  mesh = pipeline.make_mesh()
  ones = pipeline.to_global(np.ones(jax.local_device_count(), np.float32),
                            mesh)
  total = jax.jit(jnp.sum, out_shardings=jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec()))(ones)
  if int(total) != jax.device_count():
    raise RuntimeError(f"Collectives across {jax.process_count()} processes "
                       f"summed {int(total)} ones, not {jax.device_count()}.")
  # Host-to-host gathers (orbax's barriers, process_allgather) pair each
  # process's k-th devices: other groups, opened here too.
  multihost_utils.sync_global_devices("ssljax: connect collectives")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  runtime.quiet_library_logs(FLAGS.verbosity)
  runtime.use_compilation_cache(FLAGS.compilation_cache)
  initialize_distributed()
  common.report_errors(lambda: train.train_and_evaluate(
      _CONFIG.value, FLAGS.workdir, override_config=FLAGS.override_config,
      force_lock=FLAGS.force_lock), "ssljax-train", FLAGS.traceback)


def parse_flags(argv):
  """flagparse's parser for ssljax-train (also under python -m
  ssljax.cli.train, as in main())."""
  module = __name__ if __name__ != "__main__" else sys.argv[0]
  return flagparse.parser("ssljax-train", __doc__, module)(argv)


def run():
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
