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
a zero gradient, so weight decay (and LARS' momentum of it) still applies;
the unit-norm projection removes its effect on their scale. Not built:
the optional queue of past embeddings (the official 800-epoch recipe at
batch 4096 uses none).
Method state: the step count (for the freeze). Config: projector,
swav.{num_prototypes, temperature, epsilon, sinkhorn_iterations,
freeze_prototypes_steps}.
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


def default_config():
  return ml_collections.ConfigDict(dict(
      projector="2048-128",
      swav=dict(num_prototypes=3000, temperature=0.1, epsilon=0.05,
                sinkhorn_iterations=3, freeze_prototypes_steps=313)))


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
  prototype scores [...]} (one entry per view, float32)."""
  encoder: nn.Module
  projector: nn.Module
  num_prototypes: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, views, train=True):
    protos = nn.Dense(self.num_prototypes, use_bias=False,
                      kernel_init=_unit_columns(
                          nn.linear.default_kernel_init), name="prototypes")
    out = {"rep": [], "z": [], "scores": []}
    for x in views:
      rep, _ = self.encoder(x, train=train)
      z = ops.l2_normalize(self.projector(rep, train=train))
      out["rep"].append(rep)
      out["z"].append(z)
      out["scores"].append(protos(z).astype(jnp.float32))
    return out

  def represent(self, x, layers=False):
    return base.encoder_features(self.encoder, x, layers)


def build(cfg):
  encoder = models.from_config(cfg.model)
  projector = models.MLP(spec=cfg.projector, hidden_bias=True, last_bias=True,
                         dtype=encoder.dtype)
  return SwAVNet(encoder, projector, cfg.swav.num_prototypes, encoder.dtype)


def make_objective(cfg, net, *, mesh=None, total_steps=None):
  del mesh, total_steps
  c = cfg.swav
  if cfg.data.num_global < 2:
    raise ValueError("SwAV swaps codes between views: data.num_global must "
                     f"be >= 2, got {cfg.data.num_global}.")
  if c.epsilon <= 0 or c.temperature <= 0:
    raise ValueError(f"swav.epsilon = {c.epsilon}, swav.temperature = "
                     f"{c.temperature}: both must be > 0.")

  def loss_fn(variables, state, views, key):
    del key
    frozen = state["step"] < c.freeze_prototypes_steps
    params = variables["params"]
    kernel = params["prototypes"]["kernel"]
    kernel = jnp.where(frozen, jax.lax.stop_gradient(kernel), kernel)
    params = dict(params, prototypes={"kernel": kernel})
    out, new = net.apply(dict(variables, params=params), views, train=True,
                         mutable=["batch_stats"])
    loss, metrics = losses.swav(
        out["scores"], num_assign=cfg.data.num_global,
        temperature=c.temperature, epsilon=c.epsilon,
        iterations=c.sinkhorn_iterations)
    metrics["prototypes_frozen"] = frozen.astype(jnp.float32)
    return loss, base.LossAux(metrics, new["batch_stats"], state,
                              out["rep"][0])

  def update_state(state, variables, step):
    del variables, step
    return {"step": state["step"] + 1}, {}

  return base.Objective(loss_fn, init_state=lambda v: {"step": jnp.int32(0)},
                        update_state=update_state,
                        project_params=normalize_prototypes)
