"""Whole experiments on a CPU, each one command (its docstring: the details).

  python -m ssljax.experiments.compare_methods --workdir=/tmp/compare
      MVEB, VICReg, SAG-VICReg, BYOL, SimCLR, AE at an equal budget: linear
      probe, kNN and NCC per method and dataset.
  python -m ssljax.experiments.reverse_ssl --workdir=/tmp/reverse_ssl
      Reverse-engineering SSL: NCC accuracy and CDNV of every layer over
      training, true vs random labels.
  python -m ssljax.experiments.learning_by_reconstruction --workdir=/tmp/lbr
      Learning by reconstruction: CNN on top vs bottom PCA subspaces, task
      alignment of linear AEs, reconstruction vs perception over training.
  python -m ssljax.experiments.rate_distortion --workdir=/tmp/rd
      Rate-distortion AEs: energy landscapes on a 2-D spiral, the
      rate-distortion curve on MNIST.
  python -m ssljax.experiments.sag_vicreg --workdir=/tmp/sag_vicreg
      SAG-VICReg vs VICReg (+ SimCLR, BYOL, MVEB): local, global and
      clustering metrics over seeds, and on held-out classes.
  python -m ssljax.experiments.budget --workdir=/tmp/budget
      Budget curves: one run per method at 4× the comparison's epochs,
      evaluated at 1×, 2× and 4×.
  python -m ssljax.experiments.sag_toy --workdir=/tmp/sag_toy
      SAG-VICReg's mechanism in minutes: MLP encoders on nested Gaussian
      clusters, one cluster held out of pretraining.

They read the repository's configs/, which the wheel does not ship: run
them from a checkout (an editable install finds it from anywhere). Each
defines its absl flags only when run, so any of them can be imported
beside the others (tests, notebooks) without a flag clash.
"""

import ast
import importlib.util
import os

import ssljax

# The checkout an editable install points at: the parent of ssljax/.
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(
    ssljax.__file__)))


def config_file(name):
  """Path of configs/NAME.py: under the current directory, else in the
  checkout ssljax is imported from."""
  tried = [os.path.join(root, "configs", f"{name}.py")
           for root in (os.getcwd(), _CHECKOUT)]
  for path in tried:
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(
      f"No configs/{name}.py; tried {', '.join(tried)}. The experiments run "
      "from a checkout of ssljax (configs/ is not part of the wheel).")


def load_config(name, arg=None):
  """configs/NAME.py's get_config(arg)."""
  spec = importlib.util.spec_from_file_location(name, config_file(name))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def parse_overrides(items):
  """["a.b=1e-3", "c=lars"] -> {"a.b": 0.001, "c": "lars"}."""
  out = {}
  for item in items:
    key, sep, value = item.partition("=")
    if not sep or not key:
      raise ValueError(f"--set item {item!r} is not KEY=VALUE.")
    try:
      out[key] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      out[key] = value
  return out


def apply_overrides(cfg, overrides):
  """Sets {"a.b": value} on `cfg` (type-checked by ml_collections), refusing
  a key the config does not have: an unlocked ConfigDict would silently add
  it, and a misspelt --set would train the default recipe under its name."""
  for key in overrides:
    node, path = cfg, []
    for part in key.split("."):
      if not hasattr(node, "keys") or part not in node:
        fields = sorted(node.keys()) if hasattr(node, "keys") else []
        where = ".".join(path) or "the config"
        raise ValueError(f"{key!r}: {where} has no field {part!r}"
                       + (f"; its fields: {fields}" if fields else "") + ".")
      node, path = node[part], path + [part]
  cfg.update_from_flattened_dict(overrides)
  return cfg
