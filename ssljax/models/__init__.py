"""Encoders (trunks only; heads live with the methods) and MLP heads.

`build(name, **overrides)` returns a Flax module whose
`apply(variables, x, train=bool)` gives `(representation, intermediates)`.
"""

import dataclasses
import functools

import jax.numpy as jnp

from ssljax.models.heads import MLP
from ssljax.models.heads import parse_spec
from ssljax.models.resnet import ResNet
from ssljax.models.vit import ViT

ENCODERS = {
    "resnet18": functools.partial(ResNet, stage_sizes=(2, 2, 2, 2),
                                  bottleneck=False),
    "resnet34": functools.partial(ResNet, stage_sizes=(3, 4, 6, 3),
                                  bottleneck=False),
    "resnet50": functools.partial(ResNet, stage_sizes=(3, 4, 6, 3),
                                  bottleneck=True),
    "vit_tiny": functools.partial(ViT, width=192, depth=12, num_heads=3),
    "vit_small": functools.partial(ViT, width=384, depth=12, num_heads=6),
    "vit_base": functools.partial(ViT, width=768, depth=12, num_heads=12),
    "vit_large": functools.partial(ViT, width=1024, depth=24, num_heads=16),
    "vit_huge": functools.partial(ViT, width=1280, depth=32, num_heads=16,
                                  patch_size=14),
}

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16,
           "float16": jnp.float16,
           # With jax_enable_x64 only: the recipe-parity tests.
           "float64": jnp.float64}


def build(name, **overrides):
  """Encoder `name` with field overrides, e.g. build("resnet18", stem="cifar",
  width=32, dtype="bfloat16"). Parameters are float32 (a float64 model's
  PyTorch-style BatchNorm: float64); `dtype` is the compute dtype."""
  if name not in ENCODERS:
    raise ValueError(f"Unknown model {name!r}; valid: "
                     f"{', '.join(ENCODERS)}.")
  ctor = ENCODERS[name]
  fields = {f.name for f in dataclasses.fields(ctor.func)} - {
      "parent", "name"}
  unknown = set(overrides) - fields
  if unknown:
    raise ValueError(f"Unknown option(s) {sorted(unknown)} for {name}; valid: "
                     f"{', '.join(sorted(fields - set(ctor.keywords)))}.")
  if isinstance(overrides.get("dtype"), str):
    if overrides["dtype"] not in _DTYPES:
      raise ValueError(f"Unknown dtype {overrides['dtype']!r}; valid: "
                       f"{', '.join(_DTYPES)}.")
    overrides["dtype"] = _DTYPES[overrides["dtype"]]
  return ctor(**overrides)


def from_config(model_cfg):
  """Encoder of a config's `model` section: {"name": ..., **overrides}."""
  return build(model_cfg["name"], **{k: v for k, v in model_cfg.items()
                                     if k != "name"})


def representation_dim(name, **overrides):
  """Width of the representation `build(name, **overrides)` returns."""
  module = build(name, **overrides)
  if isinstance(module, ViT):
    return module.width
  return module.width * 8 * (4 if module.bottleneck else 1)
