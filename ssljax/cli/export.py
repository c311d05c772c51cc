"""`ssljax-export`: a run's encoder as a PyTorch state dict (safetensors).

  ssljax-export --workdir=W [--step=N] --format=torchvision --out=r50.safetensors
  ssljax-export --workdir=W --format=timm --out=vit.safetensors --num_classes=0

Writes the encoder of checkpoint --step (default newest; 0 = the random
init) of any method for torchvision.models.resnet18/34/50()
(--format=torchvision) or a timm VisionTransformer (--format=timm), and
prints how to build the model that loads it with strict=True. What is
written and checked: ssljax.saved_runs.export; key mapping and layouts:
ssljax.weights. The reverse: ssljax-import (ssljax.cli.import_).
"""

import sys

from absl import app
from absl import flags

from ssljax import runtime
from ssljax import saved_runs
from ssljax.cli import common
from ssljax.cli import flagparse

FLAGS = flags.FLAGS


def _define_flags():
  flags.DEFINE_string("workdir", None, "Workdir of a pretraining run.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: newest; 0: "
                       "the random initialization).")
  flags.DEFINE_enum("format", None, list(saved_runs.FORMATS), "torchvision "
                    "(ResNets) or timm (ViTs).")
  flags.DEFINE_string("out", None, "Output .safetensors file (local or "
                      "gs://).")
  flags.DEFINE_integer("num_classes", None, "Classes of the classifier "
                       "written with the encoder (0: none): a downstream "
                       "run's trained classifier (default: its classes), "
                       "else zeros (default 1000).")
  flags.DEFINE_bool("overwrite", False, "Replace --out if it exists (never "
                    "a workdir's own files).")
  flags.DEFINE_bool("traceback", False, "On an error, print the whole "
                    "traceback, not one line.")
  for name in ("workdir", "format", "out"):
    flags.mark_flag_as_required(name)


def main(argv):
  del argv
  runtime.quiet_library_logs(FLAGS.verbosity)
  meta = common.report_errors(lambda: saved_runs.export(
      FLAGS.workdir, FLAGS.format, FLAGS.out, FLAGS.step, FLAGS.num_classes,
      FLAGS.overwrite),
                              "ssljax-export", FLAGS.traceback)
  print(f"wrote {FLAGS.out} (step {meta['ssljax_step']}); load it with "
        f"{meta['load_with']} and load_state_dict(safetensors.torch."
        "load_file(path), strict=True)")


def run():
  _define_flags()
  module = __name__ if __name__ != "__main__" else sys.argv[0]
  app.run(main, flags_parser=flagparse.parser("ssljax-export", __doc__,
                                                 module))


if __name__ == "__main__":
  run()
