"""Encoder weights to and from PyTorch state dicts (torchvision, timm).

NumPy: {torch key: array in PyTorch's layout} <-> ssljax's encoder
variables; at the end, the same for a whole method's variables given its
config (`to_state_dict`, `with_state_dict`). Used by `ssljax-export` /
`ssljax-import` (ssljax.saved_runs) and by the downstream method's `init_from`.

ResNet (ssljax.models.ResNet) <-> `torchvision.models.resnet18/34/50()`:
stem_conv / stem_bn -> conv1 / bn1, stageS_blockB -> layerS.(B-1), its
conv1..3 / bn1..3 by the same names, down_conv / down_bn -> downsample.0 /
.1; convolutions HWIO -> OIHW; BatchNorm scale, bias, mean, var -> weight,
bias, running_mean, running_var (num_batches_tracked written as 0, ignored
on import). Both are ResNet v1.5 with the same paddings and BN eps, so the
features agree to float32 rounding. torchvision's constructor has width 64
and the ImageNet stem only: the CIFAR stem (3×3 stride-1 conv1, no
max-pool) exports, and loads after `model.conv1 = nn.Conv2d(3, 64, 3, 1,
1, bias=False); model.maxpool = nn.Identity()`; another width does not fit
torchvision's constructor and is refused.

ViT <-> timm `VisionTransformer` (vit_tiny/small/base_patch16_224 at their
defaults for 224 px and patch 16; other sizes with `img_size=`,
`patch_size=`): patch embedding -> patch_embed.proj (a conv), class token
-> cls_token, position embeddings -> pos_embed [1, 1 + N, D] (the class
token's first, as timm adds them), blocks -> blocks.i.{norm1, attn.qkv,
attn.proj, norm2, mlp.fc1, mlp.fc2} (Flax's separate q, k, v maps are
concatenated into timm's fused qkv, heads in order), final LayerNorm ->
norm. Pooling: "cls" is timm's default; ssljax's "gap" (LayerNorm on every
token, then the mean of the patch tokens) is timm's `class_token=False,
global_pool="avg", fc_norm=False`. Two ssljax ViT layouts: the trunk of
ssljax.models.ViT (learned position embeddings, under params["encoder"])
and MAE's encoder (ssljax.methods.mae: patch embedding as a linear map of
the (row, column, channel)-flattened patch, fixed sin-cos position
embeddings with a zero class position, exported as timm's pos_embed as
the official MAE checkpoints store them; an import into the MAE layout
checks that the file's position embeddings are those).

Classifier: `num_classes` > 0 writes fc / head as zeros of that many
classes, so that the default constructors (1000 classes) load the file
with strict=True; ssljax trains no classifier here: replace or train it.
num_classes = 0 writes none (for `model.fc = nn.Identity()` or timm's
`num_classes=0`).
"""

import jax
import numpy as np

from ssljax import models
from ssljax.models.vit import sincos_2d

RESNET, VIT, MAE = "resnet", "vit", "mae"


def _t_conv(k):  # HWIO -> OIHW
  return np.ascontiguousarray(np.transpose(k, (3, 2, 0, 1)))


def _f_conv(w):  # OIHW -> HWIO
  return np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0)))


_BN = (("scale", "weight"), ("bias", "bias"))
_STATS = (("mean", "running_mean"), ("var", "running_var"))


def _resnet_names(params):
  """[(ssljax module name, torch prefix)] of a ResNet's params."""
  names = [("stem_conv", "conv1"), ("stem_bn", "bn1")]
  for block in sorted(k for k in params if k.startswith("stage")):
    s, b = block[len("stage"):].split("_block")
    prefix = f"layer{s}.{int(b) - 1}"
    for sub in params[block]:
      torch_sub = {"down_conv": "downsample.0",
                   "down_bn": "downsample.1"}.get(sub, sub)
      names.append((f"{block}/{sub}", f"{prefix}.{torch_sub}"))
  return names


def _get(tree, path):
  for k in path.split("/"):
    tree = tree[k]
  return tree


def _set(tree, path, value):
  keys = path.split("/")
  for k in keys[:-1]:
    tree = tree.setdefault(k, {})
  tree[keys[-1]] = value


def resnet_to_torch(params, batch_stats, num_classes=1000):
  """{torchvision key: array} of a ResNet's encoder variables."""
  sd = {}
  for name, prefix in _resnet_names(params):
    p = _get(params, name)
    if "kernel" in p:
      sd[f"{prefix}.weight"] = _t_conv(np.asarray(p["kernel"]))
      continue
    s = _get(batch_stats, name)
    for ours, theirs in _BN:
      sd[f"{prefix}.{theirs}"] = np.asarray(p[ours])
    for ours, theirs in _STATS:
      sd[f"{prefix}.{theirs}"] = np.asarray(s[ours])
    sd[f"{prefix}.num_batches_tracked"] = np.zeros((), np.int64)
  if num_classes:
    width = np.shape(_last_bn(params)["scale"])[0]
    sd["fc.weight"] = np.zeros((num_classes, width), np.float32)
    sd["fc.bias"] = np.zeros((num_classes,), np.float32)
  return sd


def _last_bn(params):
  last = sorted((k for k in params if k.startswith("stage")),
                key=lambda k: tuple(int(x) for x in k[5:].split("_block")))[-1]
  bns = sorted(k for k in params[last] if k.startswith("bn"))
  return params[last][bns[-1]]


def resnet_from_torch(sd, params_like, stats_like):
  """(params, batch_stats) shaped like `*_like` from a torchvision dict."""
  params, stats = {}, {}
  for name, prefix in _resnet_names(params_like):
    p = _get(params_like, name)
    if "kernel" in p:
      _set(params, f"{name}/kernel", _f_conv(_take(sd, f"{prefix}.weight")))
      continue
    for ours, theirs in _BN:
      _set(params, f"{name}/{ours}", _take(sd, f"{prefix}.{theirs}"))
    for ours, theirs in _STATS:
      _set(stats, f"{name}/{ours}", _take(sd, f"{prefix}.{theirs}"))
  _check_shapes(params, params_like)
  _check_shapes(stats, stats_like)
  _check_unused(sd, resnet_to_torch(params, stats, 0), ("fc.",))
  return params, stats


# downstream's head BatchNorm (head_norm = "bn", the MAE linear probe's).
HEAD_BN_EPSILON = 1e-6


class StateDictMismatch(ValueError):
  """A state dict lacks a weight the config's encoder needs."""


def _take(sd, key):
  if key not in sd:
    raise StateDictMismatch(
        f"The state dict has no {key!r}: not the architecture the config "
        "describes (or another library's layout).")
  return np.asarray(sd[key], np.float32)


def _check_unused(sd, used, ignored):
  """ValueError if `sd` holds weights the import did not read (other than
  those starting with one of `ignored`: the classifier, MAE's decoder): a
  deeper model than the config's."""
  left = sorted(k for k in set(sd) - set(used) if not k.startswith(ignored))
  if left:
    raise ValueError(f"{len(left)} weights of the state dict are not in the "
                     f"config's model (e.g. {left[0]!r}): use the config of "
                     "the model the weights came from.")


def _check_shapes(tree, like, path=""):
  for k, v in like.items():
    if isinstance(v, dict):
      _check_shapes(tree[k], v, f"{path}{k}/")
    elif tuple(np.shape(tree[k])) != tuple(v.shape):
      raise ValueError(f"{path}{k}: the state dict gives shape "
                       f"{tuple(np.shape(tree[k]))}, the config's model "
                       f"needs {tuple(v.shape)}: use the config of the "
                       "model the weights came from.")


# ----------------------------------------------------------------------------
# ViT.
# ----------------------------------------------------------------------------
def _blocks(params):
  return sorted((k for k in params if k.startswith("block")),
                key=lambda k: int(k[len("block"):]))


def _block_to_torch(b, prefix):
  sd = {}
  for ln, t in (("ln1", "norm1"), ("ln2", "norm2")):
    sd[f"{prefix}.{t}.weight"] = np.asarray(b[ln]["scale"])
    sd[f"{prefix}.{t}.bias"] = np.asarray(b[ln]["bias"])
  a = b["attn"]
  d = np.shape(a["query"]["kernel"])[0]
  sd[f"{prefix}.attn.qkv.weight"] = np.concatenate(
      [np.asarray(a[n]["kernel"]).reshape(d, -1).T
       for n in ("query", "key", "value")])
  sd[f"{prefix}.attn.qkv.bias"] = np.concatenate(
      [np.asarray(a[n]["bias"]).ravel() for n in ("query", "key", "value")])
  sd[f"{prefix}.attn.proj.weight"] = np.asarray(
      a["out"]["kernel"]).reshape(-1, d).T
  sd[f"{prefix}.attn.proj.bias"] = np.asarray(a["out"]["bias"])
  for fc in ("fc1", "fc2"):
    sd[f"{prefix}.mlp.{fc}.weight"] = np.asarray(b[fc]["kernel"]).T
    sd[f"{prefix}.mlp.{fc}.bias"] = np.asarray(b[fc]["bias"])
  return {k: np.ascontiguousarray(v) for k, v in sd.items()}


def _block_from_torch(sd, prefix, like):
  b = {}
  for ln, t in (("ln1", "norm1"), ("ln2", "norm2")):
    b[ln] = {"scale": _take(sd, f"{prefix}.{t}.weight"),
             "bias": _take(sd, f"{prefix}.{t}.bias")}
  h, dh = like["attn"]["query"]["bias"].shape
  qkv_w = _take(sd, f"{prefix}.attn.qkv.weight")
  qkv_b = _take(sd, f"{prefix}.attn.qkv.bias")
  d = qkv_w.shape[1]
  b["attn"] = {}
  for i, n in enumerate(("query", "key", "value")):
    rows = slice(i * h * dh, (i + 1) * h * dh)
    b["attn"][n] = {"kernel": qkv_w[rows].T.reshape(d, h, dh),
                    "bias": qkv_b[rows].reshape(h, dh)}
  b["attn"]["out"] = {
      "kernel": _take(sd, f"{prefix}.attn.proj.weight").T.reshape(h, dh, d),
      "bias": _take(sd, f"{prefix}.attn.proj.bias")}
  for fc in ("fc1", "fc2"):
    b[fc] = {"kernel": _take(sd, f"{prefix}.mlp.{fc}.weight").T,
             "bias": _take(sd, f"{prefix}.mlp.{fc}.bias")}
  return b


def vit_to_torch(params, layout, patch_size, num_classes=1000,
                 mae_pos=None):
  """{timm key: array} of a ViT encoder's params. `layout` VIT (params of
  ssljax.models.ViT) or MAE (MAE's params; `mae_pos` [N, D], its fixed
  position embeddings)."""
  sd = {}
  if layout == VIT:
    pos = np.asarray(params["pos_embed"])
    d = pos.shape[-1]
    pos = pos.reshape(1, -1, d)
    if "cls_token" in params:
      pos = np.concatenate([np.asarray(params["cls_pos_embed"]), pos], 1)
      sd["cls_token"] = np.asarray(params["cls_token"])
    sd["patch_embed.proj.weight"] = _t_conv(
        np.asarray(params["patch_embed"]["kernel"]))
    final = params["ln_final"]
  else:
    kernel = np.asarray(params["patch_embed"]["kernel"])
    d = kernel.shape[-1]
    sd["patch_embed.proj.weight"] = _t_conv(
        kernel.reshape(patch_size, patch_size, -1, d))
    sd["cls_token"] = np.asarray(params["cls_token"])
    pos = np.concatenate([np.zeros((1, 1, d), np.float32),
                          np.asarray(mae_pos, np.float32)[None]], 1)
    final = params["norm"]
  sd["pos_embed"] = np.ascontiguousarray(pos)
  sd["patch_embed.proj.bias"] = np.asarray(params["patch_embed"]["bias"])
  for i, name in enumerate(_blocks(params)):
    sd.update(_block_to_torch(params[name], f"blocks.{i}"))
  sd["norm.weight"] = np.asarray(final["scale"])
  sd["norm.bias"] = np.asarray(final["bias"])
  if num_classes:
    sd["head.weight"] = np.zeros((num_classes, d), np.float32)
    sd["head.bias"] = np.zeros((num_classes,), np.float32)
  return sd


def vit_from_torch(sd, layout, params_like, patch_size, mae_pos=None):
  """Params shaped like `params_like` (the encoder's part only: other
  entries of an MAE's params are left out) from a timm state dict."""
  p = {}
  w = _take(sd, "patch_embed.proj.weight")
  d = w.shape[0]
  p["patch_embed"] = {"bias": _take(sd, "patch_embed.proj.bias")}
  pos = _take(sd, "pos_embed")
  if layout == VIT:
    p["patch_embed"]["kernel"] = _f_conv(w)
    grid = params_like["pos_embed"].shape[1:3]
    if "cls_token" in params_like:
      p["cls_token"] = _take(sd, "cls_token")
      p["cls_pos_embed"], pos = pos[:, :1], pos[:, 1:]
    if pos.shape[1] != grid[0] * grid[1]:
      raise ValueError(f"pos_embed has {pos.shape[1]} patch positions, the "
                       f"config's ViT {grid[0] * grid[1]}: check image_size, "
                       "patch_size and model.pool (cls: a class token).")
    p["pos_embed"] = pos.reshape(1, grid[0], grid[1], d)
    final = "ln_final"
  else:
    p["patch_embed"]["kernel"] = _f_conv(w).reshape(-1, d)
    p["cls_token"] = _take(sd, "cls_token")
    want = np.concatenate([np.zeros((1, 1, d), np.float32),
                           np.asarray(mae_pos, np.float32)[None]], 1)
    if pos.shape != want.shape or not np.allclose(pos, want, atol=1e-5):
      raise ValueError("pos_embed is not MAE's fixed sin-cos embedding: "
                       "import it into a ViT trunk (model.name vit_*, any "
                       "method but mae), which learns its positions.")
    final = "norm"
  p[final] = {"scale": _take(sd, "norm.weight"), "bias": _take(sd, "norm.bias")}
  for i, name in enumerate(_blocks(params_like)):
    p[name] = _block_from_torch(sd, f"blocks.{i}", params_like[name])
  _check_shapes(p, {k: v for k, v in params_like.items() if k in p})
  _check_unused(sd, vit_to_torch(p, layout, patch_size, 0, mae_pos),
                ("head.", "fc_norm.", "decoder_", "mask_token"))
  return p


# ----------------------------------------------------------------------------
# A method's variables <-> a state dict, by its config.
# ----------------------------------------------------------------------------
MAE_ENCODER = ("patch_embed", "cls_token", "norm")


def layout(cfg):
  """RESNET, VIT or MAE: which of the layouts above cfg's encoder has."""
  if cfg.method == "mae":
    return MAE
  return RESNET if cfg.model.name.startswith("resnet") else VIT


def patch_size(cfg):
  return cfg.model.get("patch_size", 16)


def _mae_pos(cfg):
  grid = cfg.model.get("image_size", 224) // patch_size(cfg)
  return sincos_2d(grid, models.from_config(cfg.model).width)


def encoder_of(cfg, variables):
  """(params, batch_stats) of the encoder within a method's variables."""
  if layout(cfg) == MAE:
    p = variables["params"]
    return {k: v for k, v in p.items()
            if k in MAE_ENCODER or k.startswith("block")}, {}
  return (variables["params"]["encoder"],
          variables.get("batch_stats", {}).get("encoder", {}))


def trained_classifier(cfg, variables):
  """(weight [C, d], bias [C]) of a downstream run's classifier as one
  PyTorch Linear, or None for a run without one. The head's BatchNorm
  (downstream.head_norm = "bn": no affine, eps 1e-6, as the MAE linear
  probe) is folded in with its running statistics, exactly what it
  computes in evaluation: W (x − μ) / √(σ² + ε) + b."""
  if cfg.get("method") != "downstream":
    return None
  head = variables["params"]["head"]
  w = np.asarray(head["kernel"], np.float64).T
  b = np.asarray(head["bias"], np.float64)
  norm = variables.get("batch_stats", {}).get("head_norm")
  if norm is not None:
    w = w / np.sqrt(np.asarray(norm["var"], np.float64)
                    + HEAD_BN_EPSILON)[None]
    b = b - w @ np.asarray(norm["mean"], np.float64)
  return w.astype(np.float32), b.astype(np.float32)


def to_state_dict(cfg, variables, num_classes=1000):
  """{torch key: array} of the encoder of `variables` (a run of cfg's),
  with a zero classifier of `num_classes` (0: none), or, for a downstream
  run, its trained classifier (trained_classifier)."""
  params, stats = jax.tree.map(np.asarray, encoder_of(cfg, variables))
  kind = layout(cfg)
  if kind == RESNET:
    sd = resnet_to_torch(params, stats, num_classes)
  else:
    sd = vit_to_torch(params, kind, patch_size(cfg), num_classes,
                      _mae_pos(cfg) if kind == MAE else None)
  trained = trained_classifier(cfg, variables) if num_classes else None
  if trained is not None:
    name = "fc" if kind == RESNET else "head"
    if trained[0].shape != sd[f"{name}.weight"].shape:
      raise ValueError(
          f"num_classes = {num_classes}, but this downstream run's "
          f"classifier has {trained[0].shape[0]} classes: export it with "
          f"--num_classes={trained[0].shape[0]} (or 0 for the encoder "
          "alone).")
    sd[f"{name}.weight"], sd[f"{name}.bias"] = trained
  return sd


def with_state_dict(cfg, variables, sd):
  """`variables` (a run of cfg's) with the encoder replaced by the state
  dict's weights."""
  variables = jax.tree.map(np.asarray, variables)
  params, stats = encoder_of(cfg, variables)
  kind = layout(cfg)
  if kind == RESNET:
    params, stats = resnet_from_torch(sd, params, stats)
  else:
    params = vit_from_torch(sd, kind, params, patch_size(cfg),
                            _mae_pos(cfg) if kind == MAE else None)
  out = {"params": dict(variables["params"]),
         "batch_stats": dict(variables.get("batch_stats", {}))}
  if kind == MAE:
    out["params"].update(params)
  else:
    out["params"]["encoder"] = params
    if stats:
      out["batch_stats"]["encoder"] = stats
  return out
