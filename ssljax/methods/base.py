"""The method contract: what `train.py` and the evaluators need of a method.

A method is one file (`ssljax/methods/<name>.py`) that owns its networks and
its loss. It exposes three plain functions:

  default_config() -> ml_collections.ConfigDict
      The method's own config fields (heads, loss coefficients, EMA, ...)
      with their published defaults; `configs/common.base_config(method)`
      merges them into the shared defaults.
  build(cfg) -> flax Module `net`
      All of the method's networks in one parameter tree. Two entry points:
        net(views, train)          runs every submodule (used for init);
        net.represent(x, layers)   eval-mode features of images x: {"rep":
                                   the trunk's representation [n, w]} and,
                                   with `layers`, every intermediate layer
                                   pooled to [n, w], all float32.
      Evaluation only ever calls `represent`: it needs no loss, optimizer
      or method state.
  make_objective(cfg, net, *, mesh, total_steps) -> Objective
      The training side, a loss-function factory (it closes over cfg, net
      and the mesh).

`views` is the list of augmented, normalized views of the batch (global
views first, then local crops), each [n, S, S, 3] sharded over the mesh's
"data" axis, so batch statistics inside the loss are over the global batch.
`variables` are {"params": ..., "batch_stats": ...} of `net` (the online
probe's parameters are not among them). The method state is any pytree the
method keeps between steps (EMA target network, memory bank, ...); it is
sharded (replicated), checkpointed and restored like the rest of the state.
"""

from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp


class LossAux(NamedTuple):
  metrics: dict          # float32 scalars, logged as is ("loss" included)
  batch_stats: Any       # the network's updated mutable statistics
  state: Any             # the method state after this step's forward pass
  rep: jax.Array         # [n, w] encoder features the online probe reads


def _no_state(variables):
  del variables
  return {}


def _keep_state(state, variables, step):
  del variables, step
  return state, {}


class Objective(NamedTuple):
  """A method's training objective.

  loss(variables, state, views, key) -> (loss, LossAux): float32 scalar
      loss, differentiated w.r.t. variables["params"]; `key` is this
      step's PRNG key for the method (masks, noise, random walks).
  init_state(variables) -> state: the initial method state.
  update_state(state, variables, step) -> (state, metrics): called after the
      optimizer update with the NEW variables (EMA targets follow them);
      `step` is the index of the step that produced them.
  """
  loss: Callable
  init_state: Callable = _no_state
  update_state: Callable = _keep_state


PROBE = "probe"  # parameter name of the online probe; no method may use it


class _Probe(nn.Module):
  num_classes: int

  @nn.compact
  def __call__(self, rep):
    return nn.Dense(self.num_classes, name=PROBE)(rep)


def sample_views(data_cfg):
  """Zero views shaped like a batch's (2 examples), global views first."""
  d = data_cfg
  return ([jnp.zeros((2, d.image_size, d.image_size, 3))] * d.num_global
          + [jnp.zeros((2, d.local_size, d.local_size, 3))] * d.num_local)


def init_variables(net, sample_views, num_classes, seed):
  """{"params", "batch_stats"} of `net` plus the online probe's parameters
  (params["probe"]) from `seed`: the one place train and eval initialize.

  Flax derives a submodule's init stream from the root key and its name,
  so the network and the probe (named "probe") drawn from one key are what
  one module holding both would draw, and adding or dropping the probe
  changes no other parameter.
  """
  key = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
  variables = net.init(key, sample_views, train=False)
  params = dict(variables["params"])
  if PROBE in params:
    raise ValueError(f"A method's network may not name a submodule {PROBE!r}"
                     ": that name belongs to the online probe.")
  rep = net.apply(variables, sample_views[0], method="represent")["rep"]
  params[PROBE] = _Probe(num_classes).init(key, rep)["params"][PROBE]
  return {"params": params, "batch_stats": variables.get("batch_stats", {})}


def split_probe(params):
  """(the network's params, the probe's params)."""
  return {k: v for k, v in params.items() if k != PROBE}, params[PROBE]


def probe_logits(probe_params, rep):
  return nn.Dense(probe_params["kernel"].shape[-1]).apply(
      {"params": probe_params}, rep.astype(jnp.float32))


def encoder_features(encoder, x, layers=False):
  """Eval-mode features of a trunk from `ssljax.models`: {"rep": [n, w]}
  and, with `layers`, every intermediate (ResNet stage maps, ViT block
  tokens) averaged over its spatial / token axes; float32."""
  rep, mid = encoder(x, train=False)
  out = {"rep": rep.astype(jnp.float32)}
  if layers:
    for name, h in mid.items():
      out[name] = h.astype(jnp.float32).mean(axis=tuple(range(1, h.ndim - 1)))
  return out
