"""NNCLR (Dwibedi et al., ICCV 2021): nearest-neighbour contrastive learning.

Two global views; each view's projection is replaced by its nearest
neighbour (cosine) in a support set of past embeddings, and that neighbour
is contrasted with the OTHER view's prediction (`ssljax.losses.nnclr`,
negatives from the global batch). The support set is a FIFO queue of the
L2-normalized view-1 projections of the last `support_set.size` / batch
steps: method state (checkpointed, restored bit-exactly, replicated),
filled at the start with random unit vectors, searched before this step's
batch is added (solo-learn's order). No official code was released; the
conventions are the paper's and solo-learn's `nnclr.py`: projector
2048-2048-256 (Linear + BN + ReLU twice, Linear + BN), predictor 4096-256
(Linear + BN + ReLU, Linear), τ = 0.1, support set 98,304 (the paper's;
solo-learn defaults to 65,536 and τ 0.2). Negatives are the other view's
predictions over the global batch, as solo-learn's (it gathers them, with
gradients, and averages over devices: the global mean). Where ssljax
differs by default: the last BN of the projector has no affine parameters
(as ssljax's SimCLR head: the embeddings are L2-normalized right after);
`head.last_bn_affine` (the ImageNet recipe sets it) gives solo-learn's
learned scale and offset. tests/test_recipe_nnclr.py: the step equals
solo-learn's (with its LARS: `optimizer.name = "larc"`, `larc_clip`,
`larc_exclude_bias_norm`).
Metrics: loss, contrast_accuracy, nn_cosine (mean cosine between a view-1
projection and its neighbour: how close the support set is).
Config: projector, predictor, loss.temperature, support_set.size (a
multiple of the batch size), head.last_bn_affine (False).
"""

import jax
import jax.numpy as jnp
import ml_collections

from ssljax import losses
from ssljax import ops
from ssljax.methods import base
from ssljax.methods import joint


def default_config():
  return ml_collections.ConfigDict(dict(
      projector="2048-2048-256", predictor="4096-256",
      loss=dict(temperature=0.1), support_set=dict(size=98_304),
      head=dict(last_bn_affine=False)))


def build(cfg):
  out_p, out_z = (str(x).split("-")[-1] for x in (cfg.predictor,
                                                 cfg.projector))
  if out_p != out_z:
    raise ValueError(f"NNCLR's predictor must output the projector's "
                     f"width: predictor {cfg.predictor!r} ends in {out_p}, "
                     f"projector {cfg.projector!r} in {out_z}.")
  return joint.build(
      cfg, dict(spec=cfg.projector, hidden_bias=True, last_bias=True,
                last_bn=True, last_bn_affine=bool(
                    cfg.get("head", {}).get("last_bn_affine", False))),
      dict(spec=cfg.predictor, hidden_bias=True, last_bias=True))


def nearest(z_nd, queue_qd):
  """The row of `queue_qd` with the largest dot product with each row of
  `z_nd` (both L2-normalized: the cosine nearest neighbour)."""
  return queue_qd[jnp.argmax(z_nd @ queue_qd.T, axis=-1)]


def enqueue(state, z_nd):
  """The FIFO support set with `z_nd` written at the pointer."""
  size = state["queue"].shape[0]
  queue = jax.lax.dynamic_update_slice(
      state["queue"], z_nd.astype(state["queue"].dtype),
      (state["ptr"], jnp.zeros_like(state["ptr"])))  # int32 under x64 too
  return {"queue": queue, "ptr": (state["ptr"] + z_nd.shape[0]) % size}


def make_objective(cfg, net, *, mesh=None, total_steps=None):
  del mesh, total_steps
  size, temperature = cfg.support_set.size, cfg.loss.temperature
  if size < cfg.batch_size or size % cfg.batch_size:
    raise ValueError(f"support_set.size = {size}: must be a multiple of "
                     f"batch_size ({cfg.batch_size}), as the FIFO writes "
                     "whole batches.")
  if temperature <= 0:
    raise ValueError(f"loss.temperature = {temperature}: must be > 0.")
  width = int(str(cfg.projector).split("-")[-1])

  def init_state(variables):
    del variables
    key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 7)
    return {"queue": ops.l2_normalize(jax.random.normal(key, (size, width))),
            "ptr": jnp.int32(0)}

  def loss_fn(variables, state, views, key):
    del key
    out, stats = joint.forward(net, variables, views)
    z1, z2 = (ops.l2_normalize(jax.lax.stop_gradient(z)) for z in out["z"])
    nn1, nn2 = nearest(z1, state["queue"]), nearest(z2, state["queue"])
    loss, metrics = losses.nnclr(nn1, out["p"][0], nn2, out["p"][1],
                                 temperature=temperature)
    metrics["nn_cosine"] = jnp.mean(jnp.sum(z1 * nn1, axis=-1))
    return loss, base.LossAux(metrics, stats, enqueue(state, z1),
                              out["rep"][0])

  return base.Objective(loss_fn, init_state=init_state)
