"""Config validation in one place, before any data loading or compile.

`check(cfg, num_devices=, num_processes=)` raises `ConfigError` listing every
problem found, each naming the field, its value, what is valid and what to
do. `closest_fields(cfg, name)` suggests fields for a misspelled override.
"""

import difflib
import math
import numbers
import re

from etils import epath

from ssljax import evals
from ssljax import methods
from ssljax import models
from ssljax import optim
from ssljax.data import augment
from ssljax.data import clustered
from ssljax.data import pipeline
from ssljax.methods import ema
from ssljax.methods import mveb

NONFINITE_POLICIES = ("stop", "skip")

# Smallest data.image_size (and local_size) each ResNet stem handles: the
# CIFAR stem keeps the resolution and stages 2-4 halve it 3 times (8 px ->
# 1 px); the ImageNet stem's 7x7 stride-2 conv and stride-2 max-pool halve
# it twice more, 5 times in all (32 px -> 1 px). Below that the last stages
# convolve padding: the run trains, but not the network the config names.
MIN_IMAGE_SIZE = {"cifar": 8, "imagenet": 32}
# Methods that do not run cfg.model on the images (rdae owns its MLP).
_NO_ENCODER = ("rdae",)
# Integer fields sizing a network (model.width, vit depth / num_heads,
# mae.decoder_heads, rdae.channels, ...): each must be >= 1.
_SIZE_FIELD = re.compile(
    r"(^|_)(width|depth|heads|channels|dim|patch_size|image_size|start_size|mlp_ratio)$")
# Momentum-like fields: in [0, 1) (1 never forgets, < 0 oscillates).
_MOMENTUM_FIELD = re.compile(r"^(momentum|b1|b2|beta1|beta2)$|_momentum$")


class ConfigError(ValueError):
  """The config cannot run; the message says which fields and why."""


def _positive(problems, cfg, *fields):
  for f in fields:
    value = _get(cfg, f)
    if _is_number(value) and not math.isfinite(value):
      continue  # reported by _check_finite
    if value is not None and not value > 0:
      problems.append(f"{f} = {value!r}: must be > 0.")


def _get(cfg, dotted):
  node = cfg
  for part in dotted.split("."):
    if part not in node:
      return None
    node = node[part]
  return node


def _is_number(value):
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _leaves(cfg, prefix=""):
  """(dotted name, value) of every leaf; tuple entries as name[i]."""
  for k, v in cfg.items():
    if hasattr(v, "items"):
      yield from _leaves(v, f"{prefix}{k}.")
    elif isinstance(v, (tuple, list)):
      for i, x in enumerate(v):
        yield f"{prefix}{k}[{i}]", x
    else:
      yield f"{prefix}{k}", v


def _check_finite(problems, cfg):
  """Every float anywhere (base_lr, weight_decay, loss coefficients, ...):
  an inf or nan learning rate makes the first update NaN."""
  for field, value in _leaves(cfg):
    if _is_number(value) and not math.isfinite(value):
      problems.append(f"{field} = {value!r}: must be a finite number.")


def _check_ranges(problems, cfg):
  """warmup fields >= 0, momentum-like fields in [0, 1)."""
  for field, value in _leaves(cfg):
    if not _is_number(value) or not math.isfinite(value):
      continue
    leaf = field.split(".")[-1]
    if "warmup" in leaf and value < 0:
      problems.append(f"{field} = {value!r}: must be ≥ 0 (0: no warmup).")
    if _MOMENTUM_FIELD.search(leaf) and not 0 <= value < 1:
      problems.append(f"{field} = {value!r}: must be in [0, 1) (a momentum "
                      "or decay rate, e.g. 0.9).")


def _check_sizes(problems, cfg):
  """Network sizes >= 1 and images large enough for the ResNet stem."""
  for field, value in _leaves(cfg):
    if (field.startswith("data.") or not _SIZE_FIELD.search(
        field.split(".")[-1]) or not _is_number(value)):
      continue
    if value < 1 or value != int(value):
      problems.append(f"{field} = {value!r}: a network size, must be a "
                      "whole number ≥ 1.")
  model = cfg.get("model", {})
  if (cfg.get("method") in _NO_ENCODER
      or not str(model.get("name", "")).startswith("resnet")):
    return
  stem = model.get("stem", "imagenet")
  if stem not in MIN_IMAGE_SIZE:
    return  # the model's own check names the stem
  least = MIN_IMAGE_SIZE[stem]
  fields = ["data.image_size"] + (["data.local_size"]
                                  if cfg.data.get("num_local") else [])
  for field in fields:
    size = _get(cfg, field)
    if _is_number(size) and 0 < size < least:
      how = ("stages 2-4 halve it 3 times" if stem == "cifar" else
             "the 7x7 stride-2 stem, its max-pool and stages 2-4 halve it "
             "5 times")
      other = (" (or model.stem = 'cifar', which needs ≥ 8)"
               if stem == "imagenet" else "")
      problems.append(
          f"{field} = {size}: the ResNet {stem} stem needs ≥ {least} px "
          f"({how}, down to 1 px); use ≥ {least}{other}.")


def _divisible(problems, field, value, num_devices, num_processes):
  for n, what in ((num_devices, "devices"), (num_processes, "processes")):
    if value and n > 1 and value % n:
      problems.append(
          f"{field} = {value} is not divisible by the {n} {what}; use a "
          f"multiple of {n} (e.g. {value + n - value % n}).")


# Methods whose apply passes the ViT's "dropout" RNG (stochastic depth).
DROP_PATH_METHODS = ("dino", "downstream")


def _check_vit(problems, cfg):
  model = cfg.model
  if not str(model.get("name", "")).startswith("vit"):
    return
  if model.get("drop_path", 0) and cfg.method not in DROP_PATH_METHODS:
    problems.append(f"model.drop_path = {model.drop_path}: stochastic depth "
                    f"is wired for {', '.join(DROP_PATH_METHODS)} only; set "
                    f"model.drop_path = 0 for method {cfg.method!r}.")
  patch = model.get("patch_size", 16)
  sizes = [("data.image_size", cfg.data.image_size)]
  if cfg.data.num_local:
    sizes.append(("data.local_size", cfg.data.local_size))
  for field, size in sizes:
    if not size or size <= 0:
      continue
    if size % patch:
      problems.append(f"model.patch_size = {patch} does not divide {field} = "
                      f"{size}; pick a patch size that divides it.")
    elif (size // patch) ** 2 < 4:
      problems.append(f"model.patch_size = {patch} leaves "
                      f"{(size // patch) ** 2} patch(es) at {field} = {size}; "
                      "a ViT needs at least 4 (2×2): use a smaller patch "
                      "size.")


def _check_names(problems, cfg):
  def attempt(fn):
    try:
      fn()
    except ValueError as e:
      problems.append(str(e))

  attempt(lambda: methods.get(cfg.method))
  attempt(lambda: models.from_config(cfg.model))
  attempt(lambda: augment.view_specs(cfg.augment, cfg.data.num_global,
                                     cfg.data.num_local))
  if cfg.optimizer.name not in optim.OPTIMIZERS:
    problems.append(f"Unknown optimizer.name {cfg.optimizer.name!r}; valid: "
                    f"{', '.join(optim.OPTIMIZERS)}.")
  if cfg.nonfinite not in NONFINITE_POLICIES:
    problems.append(f"Unknown nonfinite policy {cfg.nonfinite!r}; valid: "
                    f"{', '.join(NONFINITE_POLICIES)}.")
  for field in ("eval.periodic", "eval.cli"):
    value = _get(cfg, field)
    if value:
      try:
        evals.parse(value)
      except ValueError as e:
        problems.append(f"{field}: {e}")
  if "ema" in cfg:
    attempt(lambda: ema.check(cfg.ema))
  if cfg.method == "mveb":
    attempt(lambda: mveb.parse_reference(cfg.loss.get("lambd_reference")))
  attempt(lambda: clustered.from_config(cfg.data))
  _check_holdout(problems, cfg)


def _check_holdout(problems, cfg):
  classes = tuple(cfg.data.get("holdout_classes", ()))
  if not all(isinstance(c, int) and c >= 0 for c in classes):
    problems.append(f"data.holdout_classes = {classes!r}: must be class ids "
                    "(integers ≥ 0) of data.holdout_key.")
  for field in ("eval.periodic", "eval.cli"):
    value = _get(cfg, field)
    try:
      wants = value and "unseen" in evals.parse(value)
    except ValueError:
      continue  # reported by _check_names
    if wants and not classes:
      problems.append(f"{field} asks for 'unseen' but no class is held out "
                      "of pretraining: set data.holdout_classes (and "
                      "data.holdout_key) or drop 'unseen'.")


def _check_method(problems, cfg):
  """The method's own checks (build + objective), without compiling."""
  try:
    method = methods.get(cfg.method)
    net = method.build(cfg)
    method.make_objective(cfg, net, mesh=None, total_steps=1)
  except (ValueError, KeyError, AttributeError) as e:
    problems.append(f"method {cfg.method!r}: {e}")


def _check_counts(problems, cfg, num_devices):
  """Counts and lists read before any workdir exists: kNN neighbours, local
  crops, the FSDP axis, the downstream init's workdir."""
  ks = tuple(cfg.get("knn", {}).get("k", (1,)) or ())
  if not ks or any(not _is_number(k) or k < 1 or k != int(k) for k in ks):
    problems.append(f"knn.k = {ks!r}: neighbour counts, each a whole number "
                    "≥ 1, at least one (e.g. (20,) or (10, 20)).")
  local = cfg.data.get("num_local", 0)
  if _is_number(local) and (local < 0 or local != int(local)):
    problems.append(f"data.num_local = {local!r}: a number of local crops, "
                    "a whole number ≥ 0.")
  fsdp = (cfg.get("mesh") or {}).get("fsdp", 1)
  if _is_number(fsdp) and (fsdp < 1 or fsdp != int(fsdp)):
    problems.append(f"mesh.fsdp = {fsdp!r}: the devices each array is "
                    "split over, a whole number ≥ 1 (1: replicated).")
  elif _is_number(fsdp) and num_devices % fsdp:
    problems.append(f"mesh.fsdp = {fsdp} does not divide the {num_devices} "
                    "devices; use a divisor of the device count.")
  init = (cfg.get("downstream") or {}).get("init_from")
  if (cfg.get("method") == "downstream" and init and "://" not in init
      and not (epath.Path(init) / "config.json").exists()):
    problems.append(f"downstream.init_from = {init!r}: not a ssljax workdir "
                    "(no config.json there); give the --workdir of the "
                    "pretraining run.")


def check(cfg, *, num_devices=1, num_processes=1):
  """Raises ConfigError naming every invalid field of `cfg`."""
  problems = []
  _check_finite(problems, cfg)
  _check_ranges(problems, cfg)
  _positive(problems, cfg, "optimizer.base_lr", "probe.lr", "batch_size",
            "eval_batch_size", "data.image_size", "data.num_global",
            "log_every", "checkpoint.every", "checkpoint.keep")
  if cfg.data.num_local:
    _positive(problems, cfg, "data.local_size")
  if cfg.get("num_steps") is None:
    _positive(problems, cfg, "num_epochs")
  else:
    _positive(problems, cfg, "num_steps")
  for field in ("data.global_scale", "data.local_scale"):
    lo, hi = _get(cfg, field)
    if not 0 < lo <= hi <= 1:
      problems.append(f"{field} = ({lo}, {hi}): need 0 < low ≤ high ≤ 1 "
                      "(fractions of the image area).")
  for field, value in (("seed", cfg.get("seed")),
                       ("encoder_seed", cfg.get("encoder_seed")),
                       ("data.seed", cfg.data.get("seed"))):
    if value is not None and value < 0:  # grain and PRNGKey want ≥ 0
      problems.append(f"{field} = {value}: must be an integer ≥ 0.")
  if (cfg.get("encoder_seed") is not None
      and cfg.get("method") in _NO_ENCODER):
    problems.append(f"encoder_seed = {cfg.encoder_seed}: {cfg.method} has "
                    "no encoder apart from its heads to seed; leave "
                    "encoder_seed unset.")
  interp = cfg.data.get("interpolation", "bilinear")
  if interp not in pipeline.INTERPOLATIONS:
    problems.append(f"data.interpolation = {interp!r}: valid: "
                    f"{', '.join(pipeline.INTERPOLATIONS)} (how crops are "
                    "resized).")
  if cfg.optimizer.get("bias_lr_scale", 1.0) < 0:
    problems.append(f"optimizer.bias_lr_scale = "
                    f"{cfg.optimizer.bias_lr_scale}: must be ≥ 0.")
  if cfg.optimizer.get("weight_decay", 0) < 0:
    problems.append(f"optimizer.weight_decay = {cfg.optimizer.weight_decay}:"
                    " must be ≥ 0.")
  _divisible(problems, "batch_size", cfg.batch_size, num_devices,
             num_processes)
  _divisible(problems, "eval_batch_size", cfg.eval_batch_size, num_devices,
             num_processes)
  _check_counts(problems, cfg, num_devices)
  groups = cfg.get("model", {}).get("bn_groups", 1)
  if _is_number(groups) and (groups < 1 or groups != int(groups)):
    problems.append(f"model.bn_groups = {groups!r}: a number of BatchNorm "
                    "groups, must be a whole number ≥ 1 (1: statistics over "
                    "the whole batch).")
  elif _is_number(groups) and groups > 1 and cfg.batch_size % groups:
    problems.append(
        f"model.bn_groups = {groups} does not divide batch_size = "
        f"{cfg.batch_size}: BatchNorm takes its statistics over "
        f"{groups} equal groups of examples; use a batch_size that is a "
        f"multiple of {groups}.")
  n_before = len(problems)
  _check_names(problems, cfg)
  _check_vit(problems, cfg)
  _check_sizes(problems, cfg)
  if len(problems) == n_before:  # building needs valid names and sizes
    _check_method(problems, cfg)
  if len(problems) == 1:  # one line, as every CLI error
    raise ConfigError(f"Invalid config: {problems[0]}")
  if problems:
    raise ConfigError("Invalid config:\n" + "\n".join(
        f"  - {p}" for p in problems))


def _flat_keys(cfg, prefix=""):
  out = []
  for k, v in cfg.items():
    if hasattr(v, "items"):
      out += _flat_keys(v, f"{prefix}{k}.")
    else:
      out.append(f"{prefix}{k}")
  return out


def closest_fields(cfg, name, n=3):
  """The config's fields closest to a misspelled dotted `name`."""
  keys = _flat_keys(cfg)
  close = difflib.get_close_matches(name, keys, n=n, cutoff=0.5)
  if not close:  # match on the last part (`lrr` -> `optimizer.base_lr`)
    leaf = name.split(".")[-1]
    close = [k for k in keys if difflib.get_close_matches(
        leaf, [k.split(".")[-1]], cutoff=0.6)][:n]
  return close
