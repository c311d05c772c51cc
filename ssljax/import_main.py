"""`ssljax-import`: an ssljax workdir from a PyTorch state dict.

  ssljax-import --in=r50.safetensors --config=configs/vicreg_resnet50_imagenet.py \\
      --workdir=W2     # then: ssljax-eval --workdir=W2 --evals=ncc,cdnv ...

What it writes and what it checks: ssljax.export_main's docstring.
"""

from absl import app
from absl import flags
from etils import epath
import jax
import ml_collections
from ml_collections import config_flags
import safetensors.numpy

from ssljax import checkpoint
from ssljax import cli
from ssljax import export_main
from ssljax import methods
from ssljax import monitor
import ssljax.data

FLAGS = flags.FLAGS
IMPORTED_STEP = 1  # step 0 stays the random init of the config


def import_weights(path, cfg, workdir):
  """Makes `workdir` from the state dict file `path` and config `cfg`."""
  root = epath.Path(workdir)
  if (root / "checkpoints").exists() and any(
      p.name.isdigit() for p in (root / "checkpoints").iterdir()):
    raise ValueError(f"{workdir} already holds checkpoints: import into a "
                     "new --workdir.")
  sd = safetensors.numpy.load(epath.Path(path).read_bytes())
  d = cfg.data
  src = ssljax.data.load_source(d.dataset, d.train_split, d.data_dir)
  _, init = methods.init_fn(cfg, monitor.num_classes(src, d.label_key))
  variables = export_main.with_state_dict(cfg, jax.jit(init)(), sd)
  checkpoint.check_config(workdir, cfg)
  mngr = checkpoint.manager(workdir, ml_collections.ConfigDict(
      {"keep": None, "async": False}))
  checkpoint.save(mngr, IMPORTED_STEP,
                  jax.tree.map(jax.numpy.asarray, variables))  # finite only
  mngr.wait_until_finished()
  mngr.close()
  return str(root / "checkpoints" / str(IMPORTED_STEP))


def _define_import_flags():
  config_flags.DEFINE_config_file("config", None, "Config file of the model "
                                  "the weights came from (data, evals).")
  flags.DEFINE_string("in", None, "A .safetensors state dict (torchvision "
                      "ResNet or timm ViT).")
  flags.DEFINE_string("workdir", None, "New workdir to create.")
  for name in ("config", "in", "workdir"):
    flags.mark_flag_as_required(name)


def _import_main(argv):
  del argv
  path = cli.report_errors(lambda: import_weights(
      FLAGS["in"].value, FLAGS.config, FLAGS.workdir), "ssljax-import")
  print(f"wrote {path}; evaluate with ssljax-eval --workdir={FLAGS.workdir}")


def run():
  _define_import_flags()
  app.run(_import_main)


if __name__ == "__main__":
  run()
