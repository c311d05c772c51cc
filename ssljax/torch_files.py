"""PyTorch weight files: reading safetensors, and what ssljax-export writes
into them besides the weights (the encoder's architecture, how to build
the model that loads the file). Key names and layouts: ssljax.weights."""

import json

from absl import logging
import ml_dtypes
import numpy as np

from ssljax import models
from ssljax import weights


def loader_hint(cfg, fmt, num_classes):
  """How to build the PyTorch model that loads the file with strict=True."""
  m = cfg.model
  if fmt == "torchvision":
    hint = f"torchvision.models.{m.name}(num_classes={num_classes or 1000})"
    if m.get("stem", "imagenet") == "cifar":
      hint += ("; model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False); "
               "model.maxpool = nn.Identity()")
    return hint + ("" if num_classes else "; model.fc = nn.Identity()")
  arch = architecture(cfg)
  kw = [f"img_size={arch['image_size']}", f"patch_size={arch['patch_size']}",
        f"embed_dim={arch['width']}", f"depth={arch['depth']}",
        f"num_heads={arch['num_heads']}", f"mlp_ratio={arch['mlp_ratio']}",
        f"num_classes={num_classes}"]
  kind = weights.layout(cfg)
  if kind == weights.VIT and m.get("pool", "cls") == "gap":
    kw += ["class_token=False", "global_pool='avg'", "fc_norm=False"]
  if kind == weights.MAE and cfg.mae.pool == "gap":
    kw += ["global_pool='avg'", "fc_norm=False"]
  # timm's variant of the same size; the keywords fix every dimension, so
  # any ssljax ViT (ViT-L/H, custom depths) gets the right model.
  variant = _TIMM_VARIANT.get(m.name, "vit_base_patch16_224")
  return f"timm.create_model('{variant}', " + ", ".join(kw) + ")"


_TIMM_VARIANT = {"vit_tiny": "vit_tiny_patch16_224",
                 "vit_small": "vit_small_patch16_224",
                 "vit_base": "vit_base_patch16_224",
                 "vit_large": "vit_large_patch16_224",
                 "vit_huge": "vit_huge_patch14_224"}
# The dimensions a state dict's shapes do not fix: a ViT's head count.
_ARCH_FIELDS = {"resnet": ("name", "width", "stem"),
                "vit": ("name", "width", "depth", "num_heads", "mlp_ratio",
                        "patch_size", "image_size", "pool")}


def architecture(cfg):
  """The encoder's dimensions, defaults resolved ({"name", "width", ...}):
  written into every export ("ssljax_architecture") and checked on
  import."""
  module = models.from_config(cfg.model)
  kind = "resnet" if cfg.model.name.startswith("resnet") else "vit"
  return {f: (cfg.model.name if f == "name" else getattr(module, f))
          for f in _ARCH_FIELDS[kind]}


# safetensors dtype names -> numpy (bfloat16 through ml_dtypes, which
# safetensors.numpy cannot load: KeyError 'BF16').
_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
              "BF16": ml_dtypes.bfloat16, "I64": np.int64, "I32": np.int32,
              "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
DDP_PREFIX = "module."


def read_state_dict(data, path="the file"):
  """{key: array} of a safetensors file's bytes, any dtype (bfloat16
  included), with DistributedDataParallel's "module." prefix removed when
  every key has it. ValueError, in one line, for anything else (a .pth
  pickle, an empty or cut file)."""
  bad = (f"{path} is not a safetensors file ({{}}): convert a PyTorch "
         "checkpoint with safetensors.torch.save_file(model.state_dict(), "
         "'weights.safetensors').")
  if len(data) < 8:
    raise ValueError(bad.format(f"{len(data)} bytes"))
  size = int.from_bytes(data[:8], "little")
  try:
    if 8 + size > len(data):
      raise ValueError("its header runs past the end")
    header = json.loads(data[8:8 + size])
    if not isinstance(header, dict):
      raise ValueError("its header is not a JSON object")
  except ValueError as e:
    raise ValueError(bad.format(e)) from None
  header.pop("__metadata__", None)
  sd, body = {}, memoryview(data)[8 + size:]
  for key, t in header.items():
    if t.get("dtype") not in _ST_DTYPES:
      raise ValueError(f"{path}: {key} has dtype {t.get('dtype')!r}; "
                       f"readable: {', '.join(_ST_DTYPES)}.")
    start, end = t["data_offsets"]
    if end > len(body):
      raise ValueError(f"{path} is cut short: {key} ends at byte {end} of "
                       f"{len(body)}; copy the file again.")
    sd[key] = np.frombuffer(body[start:end], _ST_DTYPES[t["dtype"]]).reshape(
        t["shape"])
  if sd and all(k.startswith(DDP_PREFIX) for k in sd):
    logging.info("Removing DistributedDataParallel's %r prefix from every "
                 "key of %s.", DDP_PREFIX, path)
    sd = {k[len(DDP_PREFIX):]: v for k, v in sd.items()}
  return sd


def file_metadata(data):
  """The "__metadata__" of a safetensors file's bytes ({} if none)."""
  try:
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + size]).get("__metadata__") or {}
  except ValueError:
    return {}


def check_architecture(meta, cfg, path):
  """ValueError if a file exported by ssljax came from an encoder whose
  dimensions differ from cfg's (a head count changes no shape: a 3-head
  ViT loaded into a 6-head config splits attention wrongly)."""
  saved = meta.get("ssljax_architecture")
  if not saved:
    return  # not an ssljax export: the shapes are all there is to check
  saved, want = json.loads(saved), architecture(cfg)
  diff = [f"model.{k}: {saved[k]!r} in the file, {want.get(k)!r} in the "
          "config" for k in saved if k in want and saved[k] != want[k]]
  if diff:
    raise ValueError(
        f"{path} was exported from another encoder than --config "
        f"describes ({'; '.join(diff)}): set those fields, e.g. "
        + " ".join(f"--config.model.{k}={saved[k]}" for k in saved
                   if k in want and saved[k] != want[k] and k != "name")
        + ".")
