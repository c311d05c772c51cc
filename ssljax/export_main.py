"""`ssljax-export` / `ssljax-import`: encoders to and from PyTorch.

Export here; import in ssljax.import_main (one flag set per command).

  ssljax-export --workdir=W [--step=N] --format=torchvision --out=r50.safetensors
  ssljax-export --workdir=W --format=timm --out=vit.safetensors --num_classes=0
  ssljax-import --in=r50.safetensors --config=configs/vicreg_resnet50_imagenet.py \\
      --workdir=W2     # then: ssljax-eval --workdir=W2 --evals=ncc,cdnv ...

Export writes the encoder of checkpoint --step (default newest; 0 = the
random init) of any method as a safetensors state dict for
torchvision.models.resnet18/34/50() (--format=torchvision) or a timm
VisionTransformer (--format=timm); the file's metadata says how to build
the model that loads it with strict=True (e.g. `timm.create_model(
"vit_base_patch16_224")`, or the CIFAR stem's replacements). The online
encoder is exported (BYOL's and MVEB's EMA target are not). Key mapping,
layouts and the classifier (zeros of --num_classes, 1000 by default so the
default constructors load the file; 0 for none): ssljax.weights.

Import makes an ssljax workdir from such a file: a published checkpoint
the user downloaded (the official VICReg ResNet-50, MAE or DINO ViTs use
these key names) and converted to safetensors, e.g. `safetensors.torch.
save_file(torch.load(p, map_location="cpu")["model"], out)` for MAE's
(its decoder and mask token are ignored: only the encoder is read). --config
gives the model, the data and the evaluations (its model must be the
file's: shapes are checked, one clear error otherwise); the networks are
initialized from the config's seed and the encoder replaced by the file's
weights, saved as checkpoint 1 (step 0 stays the random init), with the
config as WORKDIR/config.json. ssljax-eval, the diagnostics and the
notebooks read it as any workdir; it holds no optimizer state, so it is
not a pretraining run to resume. A file of a MAE encoder (fixed sin-cos
positions) imports into the mae method; a ViT with learned positions into
any other method with a vit_* model.
"""

import json

from absl import app
from absl import flags
from etils import epath
import jax
import numpy as np
import safetensors.numpy

from ssljax import checkpoint
from ssljax import cli
from ssljax import eval_main
from ssljax import files
from ssljax import methods
from ssljax import models
from ssljax import weights
from ssljax.methods import mae

FLAGS = flags.FLAGS
FORMATS = {"torchvision": weights.RESNET, "timm": weights.VIT}
MAE_ENCODER = ("patch_embed", "cls_token", "norm")


def layout(cfg):
  if cfg.method == "mae":
    return weights.MAE
  return weights.RESNET if cfg.model.name.startswith("resnet") else weights.VIT


def _patch_size(cfg):
  return cfg.model.get("patch_size", 16)


def _mae_pos(cfg):
  grid = cfg.model.get("image_size", 224) // _patch_size(cfg)
  return np.asarray(mae.sincos_2d(grid, models.from_config(cfg.model).width))


def encoder_of(cfg, variables):
  """(params, batch_stats) of the encoder within a method's variables."""
  if layout(cfg) == weights.MAE:
    p = variables["params"]
    return {k: v for k, v in p.items()
            if k in MAE_ENCODER or k.startswith("block")}, {}
  return (variables["params"]["encoder"],
          variables.get("batch_stats", {}).get("encoder", {}))


def to_state_dict(cfg, variables, num_classes=1000):
  """{torch key: array} of the encoder of `variables` (a workdir's)."""
  params, stats = jax.tree.map(np.asarray, encoder_of(cfg, variables))
  kind = layout(cfg)
  if kind == weights.RESNET:
    return weights.resnet_to_torch(params, stats, num_classes)
  return weights.vit_to_torch(params, kind, _patch_size(cfg), num_classes,
                              _mae_pos(cfg) if kind == weights.MAE else None)


def with_state_dict(cfg, variables, sd):
  """`variables` with the encoder replaced by the state dict's weights."""
  variables = jax.tree.map(np.asarray, variables)
  params, stats = encoder_of(cfg, variables)
  kind = layout(cfg)
  if kind == weights.RESNET:
    params, stats = weights.resnet_from_torch(sd, params, stats)
  else:
    params = weights.vit_from_torch(
        sd, kind, params, _patch_size(cfg),
        _mae_pos(cfg) if kind == weights.MAE else None)
  out = {"params": dict(variables["params"]),
         "batch_stats": dict(variables.get("batch_stats", {}))}
  if kind == weights.MAE:
    out["params"].update(params)
  else:
    out["params"]["encoder"] = params
    if stats:
      out["batch_stats"]["encoder"] = stats
  return out


def _loader_hint(cfg, fmt, num_classes):
  """How to build the PyTorch model that loads the file with strict=True."""
  m = cfg.model
  if fmt == "torchvision":
    hint = f"torchvision.models.{m.name}(num_classes={num_classes or 1000})"
    if m.get("stem", "imagenet") == "cifar":
      hint += ("; model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False); "
               "model.maxpool = nn.Identity()")
    return hint + ("" if num_classes else "; model.fc = nn.Identity()")
  size = {"vit_tiny": "tiny", "vit_small": "small", "vit_base": "base"}
  kw = [f"img_size={m.get('image_size', 224)}",
        f"patch_size={_patch_size(cfg)}", f"num_classes={num_classes}"]
  if layout(cfg) == weights.VIT and m.get("pool", "cls") == "gap":
    kw += ["class_token=False", "global_pool='avg'", "fc_norm=False"]
  if layout(cfg) == weights.MAE and cfg.mae.pool == "gap":
    kw += ["global_pool='avg'", "fc_norm=False"]
  return (f"timm.create_model('vit_{size[m.name]}_patch16_224', "
          + ", ".join(kw) + ")")


def read_variables(workdir, step=None):
  """(cfg, the networks' variables, step) of a workdir's checkpoint `step`
  (None: the newest; 0: the random init of its config), without the online
  probe (whose class count needs the data) or any training state."""
  cfg = checkpoint.load_config(workdir)
  _, init = methods.init_fn(cfg, 2)  # the probe's class count: not read
  if step == 0:
    return cfg, jax.jit(init)(), 0
  like = jax.eval_shape(init)
  like["params"].pop(methods.base.PROBE, None)
  variables, step = eval_main.restore_variables(workdir, step, like)
  return cfg, variables, step


def export(workdir, fmt, out, step=None, num_classes=1000):
  """Writes the encoder of `workdir`'s checkpoint `step` to `out`; returns
  the metadata written with it."""
  if fmt not in FORMATS:
    raise ValueError(f"Unknown --format {fmt!r}; valid: "
                     f"{', '.join(FORMATS)}.")
  if not (epath.Path(workdir) / "config.json").exists():
    raise FileNotFoundError(f"{workdir} has no config.json: not a ssljax "
                            "workdir.")
  cfg = checkpoint.load_config(workdir)
  kind = layout(cfg)
  if FORMATS[fmt] != (weights.RESNET if kind == weights.RESNET
                      else weights.VIT):
    raise ValueError(f"--format={fmt} does not fit model {cfg.model.name!r}"
                     ": ResNets export as torchvision, ViTs as timm.")
  if kind == weights.RESNET and cfg.model.get("width", 64) != 64:
    raise ValueError(f"model.width = {cfg.model.width}: torchvision's "
                     "ResNets have width 64 only, so no torchvision model "
                     "loads this encoder.")
  _, variables, step = read_variables(workdir, step)
  sd = to_state_dict(cfg, variables, num_classes)
  meta = {"format": fmt, "ssljax_step": str(step),
          "ssljax_method": cfg.method,
          "ssljax_model": json.dumps(cfg.model.to_dict()),
          "load_with": _loader_hint(cfg, fmt, num_classes)}
  files.write_atomic(out, safetensors.numpy.save(sd, metadata=meta))
  return meta


# ----------------------------------------------------------------------------
# Command lines.
# ----------------------------------------------------------------------------
def _define_export_flags():
  flags.DEFINE_string("workdir", None, "Workdir of a pretraining run.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: newest; 0: "
                       "the random initialization).")
  flags.DEFINE_enum("format", None, list(FORMATS), "torchvision (ResNets) "
                    "or timm (ViTs).")
  flags.DEFINE_string("out", None, "Output .safetensors file (local or "
                      "gs://).")
  flags.DEFINE_integer("num_classes", 1000, "Classes of the zero classifier "
                       "written with the encoder (0: none).")
  for name in ("workdir", "format", "out"):
    flags.mark_flag_as_required(name)


def _export_main(argv):
  del argv
  meta = cli.report_errors(lambda: export(
      FLAGS.workdir, FLAGS.format, FLAGS.out, FLAGS.step, FLAGS.num_classes),
                           "ssljax-export")
  print(f"wrote {FLAGS.out} (step {meta['ssljax_step']}); load it with "
        f"{meta['load_with']} and load_state_dict(safetensors.torch."
        "load_file(path), strict=True)")


def run():
  _define_export_flags()
  app.run(_export_main)


if __name__ == "__main__":
  run()
