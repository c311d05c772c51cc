"""Downstream protocols on a pretrained encoder: linear evaluation, fine-tuning.

The protocols behind the papers' numbers (VICReg / BYOL / MVEB linear
evaluation on augmented images, MAE's linear probe and fine-tuning, the
semi-supervised subsets) are a method of ssljax run by the pretraining loop
(`ssljax-train --config=configs/eval/...`): the same sharded jitted step,
orbax checkpoints with resume, preemption, non-finite policy, metrics and
progress. This file owns the network (the encoder of cfg.model + an
optional BatchNorm + a linear head) and the loss (softmax cross-entropy on
the batch's labels, with label smoothing); the configs own the recipes.

Config (cfg.downstream):
  init_from      workdir of a pretraining run, of a downstream run, or of
                 an `ssljax-import` (any method); "" trains from the
                 random init (the from-scratch control). The encoder's
                 weights go through the PyTorch state dict of
                 ssljax.export_main, so a ResNet or ViT of any method (MAE's
                 encoder included: its fixed sin-cos positions become the
                 trunk's learned ones) loads into cfg.model; shapes are
                 checked, a mismatch is one error naming the weight.
  init_step      its checkpoint (None: the newest).
  mode           "linear": the trunk is frozen — applied in eval mode (its
                 BatchNorm statistics do not move), no gradient reaches it
                 and its optimizer group is `set_to_zero` (no update, no
                 weight decay, no optimizer state); "finetune": the trunk
                 trains (BatchNorm in train mode) at `trunk_lr_scale` ×
                 the learning rate.
  num_classes    classes of the head (the dataset's label_key).
  head_norm      "none" or "bn": BatchNorm without scale and offset (eps
                 1e-6) before the head, as MAE's linear probe.
  head_init_std  the head's kernel ~ N(0, std²), bias 0 (VICReg's linear
                 evaluation: 0.01; MAE fine-tuning: 2e-5).
  label_smoothing  ε of the smoothed one-hot targets (MAE fine-tune 0.1).
  trunk_lr_scale   "finetune": the trunk's lr relative to the head's
                 (VICReg semi-supervised: 0.03 / 0.08 at 1%).
  layer_decay    ViT "finetune": block i of L (1-based) trains at
                 layer_decay^(L + 1 − i) × its lr, the patch embedding,
                 position embeddings and class token at layer_decay^(L + 1),
                 the final LayerNorm and the head at 1 (MAE / BEiT's
                 `param_groups_lrd`); 1 turns it off; ResNets ignore it.
  mixup_alpha, cutmix_alpha, mix_switch_prob, mix_prob
                 Mixup / CutMix of the batch and its targets, timm's
                 `Mixup(mode="batch")` (ssljax.data.mixup); both alphas 0
                 (the default) turn it off. MAE fine-tune: 0.8, 1.0, 0.5,
                 1.0.
The loss reads labels: `Objective.uses_labels` (ssljax.methods.base).
The rest of MAE's fine-tuning recipe lives where the pretraining recipes
keep theirs: RandAugment and random erasing are the view augmentation
`augment="randaugment"` (ssljax.data.randaugment), drop path is the ViT's
`model.drop_path` (ssljax.models.vit; its "dropout" RNG comes from the
step's key).
"""

import ml_collections

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from ssljax import models
from ssljax import weights
from ssljax.data import mixup
from ssljax.methods import base

MODES = ("linear", "finetune")
HEAD_NORMS = ("none", "bn")


def default_config():
  return ml_collections.ConfigDict(dict(downstream=dict(
      init_from="", init_step=ml_collections.FieldReference(
          None, field_type=int),
      mode="linear", num_classes=1000, head_norm="none", head_init_std=0.01,
      label_smoothing=0.0, trunk_lr_scale=1.0, layer_decay=1.0,
      mixup_alpha=0.0, cutmix_alpha=0.0, mix_switch_prob=0.5, mix_prob=1.0)))


class Classifier(nn.Module):
  """Encoder + optional BatchNorm (no affine) + linear head. __call__
  returns {"rep": [n, w] (stop-gradient when frozen), "logits": float32};
  `represent` adds the logits to the eval features (the `classify`
  evaluation reads them)."""
  encoder: nn.Module
  num_classes: int
  frozen: bool
  head_norm: str = "none"
  head_init_std: float = 0.01

  def setup(self):
    if self.head_norm == "bn":
      self.norm = nn.BatchNorm(momentum=0.9, epsilon=weights.HEAD_BN_EPSILON,
                               use_scale=False, use_bias=False,
                               name="head_norm")
    self.head = nn.Dense(self.num_classes, kernel_init=nn.initializers.normal(
        self.head_init_std), name="head")

  def _head(self, rep, train):
    h = rep.astype(jnp.float32)
    if self.head_norm == "bn":
      h = self.norm(h, use_running_average=not train)
    return self.head(h)

  def __call__(self, views, train=True):
    rep, _ = self.encoder(views[0], train=train and not self.frozen)
    if self.frozen:
      rep = jax.lax.stop_gradient(rep)
    return {"rep": rep, "logits": self._head(rep, train).astype(jnp.float32)}

  def represent(self, x, layers=False):
    out = base.encoder_features(self.encoder, x, layers)
    out["logits"] = self._head(out["rep"], False).astype(jnp.float32)
    return out


def build(cfg):
  d = cfg.downstream
  if d.mode not in MODES:
    raise ValueError(f"Unknown downstream.mode {d.mode!r}; valid: "
                     f"{', '.join(MODES)}.")
  if d.head_norm not in HEAD_NORMS:
    raise ValueError(f"Unknown downstream.head_norm {d.head_norm!r}; valid: "
                     f"{', '.join(HEAD_NORMS)}.")
  if d.num_classes < 1:
    raise ValueError(f"downstream.num_classes = {d.num_classes}: set it to "
                     "the number of classes of data.label_key.")
  return Classifier(models.from_config(cfg.model), d.num_classes,
                    frozen=d.mode == "linear", head_norm=d.head_norm,
                    head_init_std=d.head_init_std)


def lr_scales(cfg, params):
  """A float per parameter leaf: the multiple of the learning rate it trains
  at (0: frozen)."""
  d = cfg.downstream
  depth = sum(1 for k in params.get("encoder", {}) if k.startswith("block"))

  def scale(path, _):
    top = path[0].key
    if top != "encoder":
      return 1.0
    if d.mode == "linear":
      return 0.0
    s = d.trunk_lr_scale
    if depth and d.layer_decay != 1.0:
      name = path[1].key
      layer = (int(name[len("block"):]) if name.startswith("block") else
               depth + 1 if name == "ln_final" else 0)
      s *= d.layer_decay ** (depth + 1 - layer)
    return float(s)

  return jax.tree_util.tree_map_with_path(scale, params)


def load_pretrained(cfg, params, batch_stats, read_variables):
  """(params, batch_stats) with the encoder's replaced by those of
  cfg.downstream.init_from's checkpoint (unchanged when it is ""), read
  with `read_variables` (Objective.load_pretrained)."""
  d = cfg.downstream
  if not d.init_from:
    return params, batch_stats
  pre_cfg, pre, _ = read_variables(d.init_from, d.init_step)
  out = weights.with_state_dict(
      cfg, {"params": params, "batch_stats": batch_stats},
      weights.to_state_dict(pre_cfg, pre, num_classes=0))
  return out["params"], out["batch_stats"]


def make_objective(cfg, net, *, mesh=None, total_steps=None):
  del mesh, total_steps
  d = cfg.downstream
  eps = d.label_smoothing
  if not 0 <= eps < 1:
    raise ValueError(f"downstream.label_smoothing = {eps}: must be in "
                     "[0, 1).")
  for name in ("mix_switch_prob", "mix_prob"):
    if not 0 <= d[name] <= 1:
      raise ValueError(f"downstream.{name} = {d[name]}: must be in [0, 1].")
  if d.mixup_alpha < 0 or d.cutmix_alpha < 0:
    raise ValueError("downstream.mixup_alpha and cutmix_alpha must be >= 0 "
                     "(0 turns each off).")

  def loss_fn(variables, state, views, key, labels):
    k_mix, k_drop = jax.random.split(key)
    x, targets, lam = mixup.mix(
        k_mix, views[0], labels, d.num_classes, d.mixup_alpha,
        d.cutmix_alpha, d.mix_switch_prob, d.mix_prob, eps)
    out, new = net.apply(variables, [x] + list(views[1:]), train=True,
                         rngs={"dropout": k_drop}, mutable=["batch_stats"])
    logits = out["logits"]
    loss = optax.softmax_cross_entropy(logits, targets).mean()
    top1 = jnp.mean(logits.argmax(-1) == labels)
    return loss, base.LossAux({"loss": loss, "train_top1": top1,
                               "mix_lambda": lam},
                              new["batch_stats"], state, out["rep"])

  return base.Objective(
      loss_fn, uses_labels=True,
      lr_scales=lambda params: lr_scales(cfg, params),
      load_pretrained=lambda p, s, read: load_pretrained(cfg, p, s, read))
