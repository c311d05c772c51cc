"""SwAV (Caron et al., NeurIPS 2020): swapping assignments between views.

facebookresearch/swav conventions. Network: the encoder, a projection head
Linear (bias) + BN + ReLU + Linear (bias) (2048-128), L2 normalization,
then K prototypes (a Linear without bias, K = 3000) whose vectors are kept
at unit norm: initialized so and projected back after every optimizer
update (`Objective.project_params`; the official code normalizes them at
the start of each step, the same sequence of values). Codes: Sinkhorn-
Knopp on the detached prototype scores of each global view, ε = 0.05, 3
iterations, every sum over the GLOBAL batch (`ssljax.losses.sinkhorn`);
loss: every other view (global and local crops) predicts them at
temperature 0.1 (`ssljax.losses.swav`). The prototypes receive no gradient
for their first `swav.freeze_prototypes_steps` steps (313 in the official
recipe, ≈ one epoch at batch 4096). Where ssljax differs: during the freeze
the official optimizer skips the prototypes entirely, while here they get
a zero gradient: under the official LARC (optimizer.name = "larc") that is
the same step (a zero gradient is neither decayed nor scaled, and its
momentum stays zero); under LARS weight decay (and its momentum) still
applies, which the unit-norm projection removes from their scale.
The official step (tests/test_recipe_swav.py, which
configs/swav_resnet50_imagenet.py reproduces) also needs `concat_views`
(crops of one size in one encoder pass, the head over all crops: BN
statistics over them together), optimizer.warmup_linspace and
model.torch_init / unbiased_running_var, and for the 800-epoch script
model.bn_groups = 8 (apex SyncBN in process groups of 8 GPUs: BN
statistics per 512 of the 4096 images; the bs256 scripts sync all GPUs,
bn_groups = 1).

Queue (`swav.queue_length` L > 0; the official small-batch recipes, e.g.
batch 256 with L = 3840 from epoch 15): per assigned view, the unit-norm
projections of the last L / B global batches (detached). From step
`swav.queue_start_step` (the official `epoch_queue_starts` counts epochs)
each step pushes its batch; once a queue is full, its scores against the
current prototypes join that view's Sinkhorn (`ssljax.losses.swav`). The
official queue is per GPU (L / world size each) and its Sinkhorn sums over
all GPUs, so its codes are those of one global queue of the last L
embeddings, as here; the official code rounds L down to a multiple of the
global batch, ssljax asks for one.
Method state: the step count (for the freeze and the queue start) and,
with a queue, `queue` [views, L, d], its ring position `queue_ptr` and
`queue_filled` (rows pushed, up to L). Config: projector, swav.{num_prototypes, temperature, epsilon,
sinkhorn_iterations, freeze_prototypes_steps, queue_length,
queue_start_step}.
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
from ssljax.methods import joint


def default_config():
  return ml_collections.ConfigDict(dict(
      projector="2048-128", concat_views=False,
      swav=dict(num_prototypes=3000, temperature=0.1, epsilon=0.05,
                sinkhorn_iterations=3, freeze_prototypes_steps=313,
                queue_length=0, queue_start_step=0)))


def _unit_columns(init):
  """`init`, each column (one prototype of a [d, K] kernel) at unit norm."""
  def f(key, shape, dtype=jnp.float32):
    return ops.l2_normalize(init(key, shape, dtype).T).T
  return f


def normalize_prototypes(params):
  """`params` with every prototype (kernel column) at unit L2 norm."""
  k = params["prototypes"]["kernel"]
  return dict(params, prototypes={"kernel": ops.l2_normalize(k.T).T})


class SwAVNet(nn.Module):
  """Returns {"rep": [...], "z": unit-norm projections [...], "scores":
  prototype scores [...]} (one entry per view, float32; float64 for a
  float64 model)."""
  encoder: nn.Module
  projector: nn.Module
  num_prototypes: int
  dtype: Any = jnp.float32
  concat_views: bool = False
  torch_init: bool = False

  @nn.compact
  def __call__(self, views, train=True):
    # nn.Linear's U(±1/√d) with torch_init (then unit columns, as the
    # official code's first normalization), else Flax's LeCun normal.
    init = (nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
            if self.torch_init else nn.linear.default_kernel_init)
    protos = nn.Dense(self.num_prototypes, use_bias=False,
                      kernel_init=_unit_columns(init), name="prototypes")
    if self.concat_views:
      # The official forward: one encoder pass per run of same-size crops,
      # the head once over all of them (BN statistics over those crops).
      rep = joint.encode_by_size(self.encoder, views, train)
      z = ops.l2_normalize(joint.grouped(
          lambda r: self.projector(r, train=train), rep, len(views),
          joint.bn_groups(self.encoder, train)))
      return {"rep": joint.split_views(rep, len(views)),
              "z": joint.split_views(z, len(views)),
              "scores": joint.split_views(ops.f32(protos(z)), len(views))}
    out = {"rep": [], "z": [], "scores": []}
    for x in views:
      rep, _ = self.encoder(x, train=train)
      z = ops.l2_normalize(self.projector(rep, train=train))
      out["rep"].append(rep)
      out["z"].append(z)
      out["scores"].append(ops.f32(protos(z)))
    return out

  def represent(self, x, layers=False):
    return base.encoder_features(self.encoder, x, layers)


def build(cfg):
  encoder = models.from_config(cfg.model)
  torch = joint.head_flags(encoder)
  projector = models.MLP(spec=cfg.projector, hidden_bias=True, last_bias=True,
                         dtype=encoder.dtype, **torch)
  return SwAVNet(encoder, projector, cfg.swav.num_prototypes, encoder.dtype,
                 concat_views=bool(cfg.get("concat_views", False)),
                 torch_init=torch["torch_init"])


def make_objective(cfg, net, *, mesh=None, total_steps=None):
  del mesh, total_steps
  c = cfg.swav
  if cfg.data.num_global < 2:
    raise ValueError("SwAV swaps codes between views: data.num_global must "
                     f"be >= 2, got {cfg.data.num_global}.")
  if c.epsilon <= 0 or c.temperature <= 0:
    raise ValueError(f"swav.epsilon = {c.epsilon}, swav.temperature = "
                     f"{c.temperature}: both must be > 0.")

  length = c.get("queue_length", 0)
  if length < 0 or (length and length % cfg.batch_size):
    raise ValueError(f"swav.queue_length = {length}: must be 0 (no queue) "
                     "or a multiple of the global batch_size "
                     f"{cfg.batch_size}, e.g. {15 * cfg.batch_size}.")
  num_assign = cfg.data.num_global

  def push(state, z_views):
    """From queue_start_step, writes this batch's embeddings (detached) at
    the ring position; the Sinkhorn does not depend on the row order."""
    z = jax.lax.stop_gradient(jnp.stack(z_views[:num_assign]))
    n = z.shape[1]
    queue = jax.lax.dynamic_update_slice(
        state["queue"], z.astype(jnp.float32), (0, state["queue_ptr"], 0))
    on = state["step"] >= c.queue_start_step
    keep = lambda new, old: jnp.where(on, new, old)
    return dict(state, queue=keep(queue, state["queue"]),
                queue_ptr=keep((state["queue_ptr"] + n) % length,
                               state["queue_ptr"]),
                queue_filled=keep(jnp.minimum(state["queue_filled"] + n,
                                              length), state["queue_filled"]))

  def loss_fn(variables, state, views, key):
    del key
    frozen = state["step"] < c.freeze_prototypes_steps
    params = variables["params"]
    kernel = params["prototypes"]["kernel"]
    kernel = jnp.where(frozen, jax.lax.stop_gradient(kernel), kernel)
    params = dict(params, prototypes={"kernel": kernel})
    out, new = net.apply(dict(variables, params=params), views, train=True,
                         mutable=["batch_stats"])
    swav_loss = lambda **kw: losses.swav(
        out["scores"], num_assign=num_assign, temperature=c.temperature,
        epsilon=c.epsilon, iterations=c.sinkhorn_iterations, **kw)[0]
    if length:
      # Once full, the queue joins the codes (the official `use_the_queue`);
      # its scores use the current prototypes, without gradient.
      used = state["queue_filled"] >= length
      queue_scores = jnp.einsum("vld,dk->vlk", state["queue"],
                                jax.lax.stop_gradient(kernel))
      loss = jax.lax.cond(  # one Sinkhorn per step, not both
          used, lambda: swav_loss(queue_scores=list(queue_scores)),
          swav_loss)
      metrics = {"loss": loss, "queue_used": used.astype(jnp.float32)}
      state = push(state, out["z"])
    else:
      loss = swav_loss()
      metrics = {"loss": loss}
    metrics["prototypes_frozen"] = frozen.astype(jnp.float32)
    return loss, base.LossAux(metrics, new["batch_stats"], state,
                              out["rep"][0])

  def init_state(variables):
    state = {"step": jnp.int32(0)}
    if length:
      width = variables["params"]["prototypes"]["kernel"].shape[0]
      state.update(queue=jnp.zeros((num_assign, length, width), jnp.float32),
                   queue_ptr=jnp.int32(0), queue_filled=jnp.int32(0))
    return state

  def update_state(state, variables, step):
    del variables, step
    return dict(state, step=state["step"] + 1), {}

  return base.Objective(loss_fn, init_state=init_state,
                        update_state=update_state,
                        project_params=normalize_prototypes)
