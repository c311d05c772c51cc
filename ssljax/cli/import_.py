"""`ssljax-import`: an ssljax workdir from a PyTorch state dict.

  ssljax-import --in=r50.safetensors --config=configs/vicreg_resnet50_imagenet.py \\
      --workdir=W2     # then: ssljax-eval --workdir=W2 --evals=ncc,cdnv ...

What it writes and what it checks: ssljax.saved_runs.import_weights (and the
module docstring of ssljax.saved_runs).
"""

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from ssljax import runtime
from ssljax import saved_runs
from ssljax.cli import common
from ssljax.cli import flagparse

FLAGS = flags.FLAGS


def _define_flags():
  config_flags.DEFINE_config_file("config", None, "Config file of the model "
                                  "the weights came from (data, evals).")
  flags.DEFINE_string("in", None, "A .safetensors state dict (torchvision "
                      "ResNet or timm ViT).")
  flags.DEFINE_string("workdir", None, "New workdir to create.")
  flags.DEFINE_bool("traceback", False, "On an error, print the whole "
                    "traceback, not one line.")
  for name in ("config", "in", "workdir"):
    flags.mark_flag_as_required(name)


def main(argv):
  del argv
  runtime.quiet_library_logs(FLAGS.verbosity)
  path = common.report_errors(lambda: saved_runs.import_weights(
      FLAGS["in"].value, FLAGS.config, FLAGS.workdir), "ssljax-import",
                              FLAGS.traceback)
  print(f"wrote {path}; evaluate with ssljax-eval --workdir={FLAGS.workdir}")


def run():
  _define_flags()
  module = __name__ if __name__ != "__main__" else sys.argv[0]
  app.run(main, flags_parser=flagparse.parser("ssljax-import", __doc__,
                                                 module))


if __name__ == "__main__":
  run()
