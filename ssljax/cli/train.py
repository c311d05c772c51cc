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

import difflib  # pylint: disable=g-import-not-at-top
import importlib.util
import os
import re
import sys

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
from ssljax import validate
from ssljax.cli import common
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


_HELP_ARGS = ("--help", "-help", "--helpshort", "-helpshort", "-?")


def _usage_error(prog, message):
  """absl's one-line flag error, exit 2 (a bad command line)."""
  print(f"{prog}: error: {message}", file=sys.stderr)
  sys.exit(2)


def _print_help():
  """--help: this module's docstring and its own flags (absl's --help lists
  the flags of the console script's module, which defines none)."""
  module = __name__ if __name__ != "__main__" else sys.argv[0]
  print(__doc__.strip())
  print("\nFlags (--config.FIELD=VALUE overrides any field of the config; "
        "--helpfull lists every library's flags too):")
  print(FLAGS.module_help(module))


def _config_spec(argv):
  """(index, path, arg) of --config=PATH[:ARG] in argv, or None."""
  for i, a in enumerate(argv[1:], 1):
    if a == "--":
      return None
    if a.startswith("--config="):
      path, sep, arg = a[len("--config="):].partition(":")
      return i, path, (arg if sep else None)
  return None


def _load_config(prog, path, arg):
  """The config that --config=PATH[:ARG] names, or a usage error saying why
  it does not load (loaded here too so absl never buries that in a
  traceback)."""
  spec = f"{path}:{arg}" if arg is not None else path
  if not os.path.isfile(path):
    folder = os.path.dirname(path) or "."
    there = sorted(f for f in os.listdir(folder) if f.endswith(".py")) if (
        os.path.isdir(folder)) else []
    close = difflib.get_close_matches(os.path.basename(path), there, n=3)
    hint = (f" Did you mean: {', '.join(os.path.join(folder, c) for c in close)}?"
            if close else f" Config files are Python files such as "
            "configs/quickstart.py.")
    _usage_error(prog, f"--config={spec}: no such file.{hint}")
  try:
    loader = importlib.util.spec_from_file_location("_ssljax_cfg", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module.get_config(arg) if arg is not None else module.get_config()
  except Exception as e:  # pylint: disable=broad-except
    msg = " ".join(str(e).split())
    _usage_error(prog, f"--config={spec}: the config does not load: "
                 f"{type(e).__name__}: {msg}")


def _resolves(cfg, dotted):
  node = cfg
  for part in dotted.split("."):
    try:
      node = node[part]
    except (KeyError, TypeError, IndexError, AttributeError):
      return False
  return True


def _bad_field(prog, argv, cfg):
  """Usage error for the first --config.FIELD override naming no field."""
  for a in argv[1:]:
    if a == "--":
      break
    if a.startswith("--config."):
      field = a.split("=", 1)[0][len("--config."):]
      if cfg is not None and not _resolves(cfg, field):
        close = validate.closest_fields(cfg, field)
        hint = (f" Closest valid fields: {', '.join(close)}." if close else
                " Valid fields: see the config file.")
        _usage_error(prog, f"--config.{field}: no such config field.{hint}")


def _flag_error(prog, error, cfg):
  """absl's flag error (bad value, missing or unknown flag) in one line."""
  message = "; ".join(" ".join(line.split())
                      for line in str(error).splitlines() if line.strip())
  m = re.search(r"Flag --(\w+) must have a value other than None", message)
  if m:
    what = {"workdir": "the folder for checkpoints, metrics and the summary, "
                       "e.g. --workdir=/tmp/run1",
            "config": "a config file, e.g. --config=configs/quickstart.py"}
    _usage_error(prog, f"--{m.group(1)} is required: pass "
                 f"{what.get(m.group(1), 'a value')}.")
  m = re.match(r"flag --config\.([\w.]+)=", message)
  if m and cfg is not None and _resolves(cfg, m.group(1)):
    node = cfg
    for part in m.group(1).split("."):
      node = node[part]
    kind = type(node).__name__
    article = "an" if kind[0] in "aeiou" else "a"
    message += (f"; config field {m.group(1)} takes {article} {kind} "
                f"(default {node!r}).")
  _usage_error(prog, message.removeprefix("flag "))


def parse_flags(argv):
  """absl's parser, with one-line errors (exit 2) for a bad command line:
  a config file that is missing or does not load, a misspelled config field
  (with the closest valid fields), a bad value, a missing flag. Expands `~`
  in --config=~/x.py (no shell does after `=`). --help lists this module's
  flags and exits 0."""
  prog = "ssljax-train"  # also under python -m ssljax.cli.train, as in main()
  argv = list(argv)
  before_dashes = argv[1:argv.index("--")] if "--" in argv else argv[1:]
  if any(a in _HELP_ARGS for a in before_dashes):
    _print_help()
    sys.exit(0)
  cfg = None
  spec = _config_spec(argv)
  if spec:
    i, path, arg = spec
    path = os.path.expanduser(path)
    argv[i] = f"--config={path}" + (f":{arg}" if arg is not None else "")
    cfg = _load_config(prog, path, arg)
  saved, sys.argv = sys.argv, argv  # config_flags reads the overrides there
  try:
    return FLAGS(argv)
  except (KeyError, AttributeError):
    _bad_field(prog, argv, cfg)
    raise
  except flags.Error as e:
    _bad_field(prog, argv, cfg)
    _flag_error(prog, e, cfg)
  finally:
    sys.argv = saved


def run():
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
