"""DINO (Caron et al., ICCV 2021): self-distillation with no labels.

facebookresearch/dino conventions. Student: encoder + DINO head (Linear +
GELU layers to `hidden_dim`, a Linear to `bottleneck_dim`, L2
normalization, then a weight-normalized Linear without bias to `out_dim`:
each output unit's weight vector divided by its norm, times a gain fixed
at 1 when `norm_last_layer`, else learned). Teacher: the EMA of the whole
student (`ssljax.methods.ema`, cosine 0.996 → 1), run on the global views
only. Loss `ssljax.losses.dino`: the teacher's centred, sharpened softmax
(temperature `teacher_temp`, linearly warmed up from `warmup_teacher_temp`
over the first `warmup_teacher_temp_epochs`, per epoch as the official
schedule) predicted by every other view of the student (temperature
`student_temp`), with the center an EMA (momentum `center_momentum`) of
the teacher's outputs over the global batch (method state). The last layer
gets no gradient in the first `freeze_last_layer_epochs`. Epochs of these
schedules are cfg.num_epochs equal parts of the run.
The rest of the official recipe lives in the shared config: per-parameter
gradient clipping at norm 3 (`optimizer.clip_per_param`), the weight-decay
cosine 0.04 → 0.4 (`optimizer.weight_decay_end`), drop path in the
student's ViT only (`model.drop_path`; the teacher is built without it);
the head's linear maps start at N(0, 0.02²) with zero biases (the official
trunc_normal_ at std 0.02 cuts at ±2, i.e. ±100σ). Where ssljax differs:
the last layer's direction starts at Flax's LeCun normal, PyTorch's
nn.Linear default in the official code.
Metrics: loss, teacher_entropy (mean entropy of the teacher's codes: high
= uniform collapse, 0 = one-hot), teacher_temp, ema_momentum.
Config: dino.{out_dim, hidden_dim, bottleneck_dim, head_layers,
norm_last_layer, student_temp, teacher_temp, warmup_teacher_temp,
warmup_teacher_temp_epochs, center_momentum, freeze_last_layer_epochs},
ema.{base, schedule}.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from ssljax import losses
from ssljax import models
from ssljax import ops
from ssljax.methods import base
from ssljax.methods import ema


def default_config():
  return ml_collections.ConfigDict(dict(
      dino=dict(out_dim=65536, hidden_dim=2048, bottleneck_dim=256,
                head_layers=3, norm_last_layer=True, student_temp=0.1,
                teacher_temp=0.04, warmup_teacher_temp=0.04,
                warmup_teacher_temp_epochs=0, center_momentum=0.9,
                freeze_last_layer_epochs=1),
      ema=ema.default_config(0.996)))


class DINOHead(nn.Module):
  """MLP (GELU, no BN) -> L2 normalize -> weight-normalized last layer."""
  out_dim: int
  hidden_dim: int
  bottleneck_dim: int
  layers: int = 3
  norm_last_layer: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = x.astype(self.dtype)
    init = nn.initializers.normal(0.02)  # trunc_normal_(std=.02), bias 0
    for i in range(self.layers - 1):
      x = nn.gelu(nn.Dense(self.hidden_dim, dtype=self.dtype, kernel_init=init,
                           name=f"fc{i + 1}")(x), approximate=False)
    x = nn.Dense(self.bottleneck_dim, dtype=self.dtype, kernel_init=init,
                 name=f"fc{self.layers}")(x)
    x = ops.l2_normalize(x.astype(jnp.float32))
    v = self.param("last_layer_v", nn.linear.default_kernel_init,
                   (self.bottleneck_dim, self.out_dim))
    w = v / jnp.linalg.norm(v, axis=0, keepdims=True)
    if not self.norm_last_layer:
      w = w * self.param("last_layer_g", nn.initializers.ones, (self.out_dim,))
    return x @ w


class DINONet(nn.Module):
  """{"rep": [...], "out": [...]} per view (float32 head outputs)."""
  encoder: nn.Module
  head: nn.Module

  def __call__(self, views, train=True):
    out = {"rep": [], "out": []}
    for x in views:
      rep, _ = self.encoder(x, train=train)
      out["rep"].append(rep)
      out["out"].append(self.head(rep))
    return out

  def represent(self, x, layers=False):
    return base.encoder_features(self.encoder, x, layers)


def build(cfg):
  d = cfg.dino
  encoder = models.from_config(cfg.model)
  return DINONet(encoder, DINOHead(
      d.out_dim, d.hidden_dim, d.bottleneck_dim, d.head_layers,
      d.norm_last_layer, encoder.dtype, name="head"))


def teacher_temperature(d, epoch):
  """The official per-epoch schedule: np.linspace(warmup, final, W)[epoch]
  for epoch < W, then the final value."""
  w = d.warmup_teacher_temp_epochs
  if w <= 0:
    return jnp.float32(d.teacher_temp)
  frac = jnp.minimum(epoch, w - 1) / max(w - 1, 1)
  warm = d.warmup_teacher_temp + (d.teacher_temp - d.warmup_teacher_temp) * (
      frac if w > 1 else 0.0)
  return jnp.where(epoch < w, warm, d.teacher_temp).astype(jnp.float32)


def make_objective(cfg, net, *, mesh=None, total_steps):
  del mesh
  d = cfg.dino
  if cfg.data.num_global < 2:
    raise ValueError("DINO's teacher sees two global views: data.num_global "
                     f"must be 2, got {cfg.data.num_global}.")
  steps_per_epoch = max(total_steps / max(cfg.num_epochs, 1), 1.0)
  ema_update = ema.updater(cfg.ema, total_steps)
  # The official teacher is built without drop path; the student with it.
  teacher_net = net
  if getattr(net.encoder, "drop_path", 0.0):
    teacher_net = net.clone(encoder=net.encoder.clone(drop_path=0.0))

  def loss_fn(variables, state, views, key):
    epoch = jnp.floor(state["step"] / steps_per_epoch)
    params = variables["params"]
    frozen = epoch < d.freeze_last_layer_epochs
    head = {k: (jnp.where(frozen, jax.lax.stop_gradient(v), v)
                if k.startswith("last_layer") else v)
            for k, v in params["head"].items()}
    params = dict(params, head=head)
    out, new = net.apply(dict(variables, params=params), views, train=True,
                         rngs={"dropout": key}, mutable=["batch_stats"])
    teacher, teacher_new = teacher_net.apply(
        state["ema"], views[:2], train=True, mutable=["batch_stats"])
    state = ema.with_stats(state, teacher_new.get(
        "batch_stats", state["ema"]["batch_stats"]))
    temp = teacher_temperature(d, epoch)
    loss, metrics, center = losses.dino(
        out["out"], teacher["out"], state["center"],
        student_temp=d.student_temp, teacher_temp=temp,
        center_momentum=d.center_momentum)
    metrics["teacher_temp"] = temp
    return loss, base.LossAux(metrics, new["batch_stats"],
                              dict(state, center=center), out["rep"][0])

  def update_state(state, variables, step):
    state, metrics = ema_update(state, variables, step)
    return dict(state, step=state["step"] + 1), metrics

  return base.Objective(
      loss_fn, init_state=lambda v: {"ema": ema.init(v), "step": jnp.int32(0),
                                     "center": jnp.zeros((d.out_dim,))},
      update_state=update_state)
