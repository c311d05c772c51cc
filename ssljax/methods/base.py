"""The method contract: what training and the evaluators need of a method.

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
sharded like the parameters (replicated, or split along "fsdp"),
checkpointed and restored like the rest of the state.

Diagnostics. `train_step.py` adds to every method's metrics `rep_std_mean` and
`rep_std_min` (`std_summary` of LossAux.rep) and, for a method whose
LossAux carries `pairs`, `pair_same_<key>` for every label key of the
batch (`pair_label_metrics`). SSL losses never read labels; these metrics
do, outside the loss. The downstream protocols (`ssljax.methods.
downstream`) are the one kind of method whose loss reads them: they say so
with `Objective.uses_labels`.
"""

from typing import Any, Callable, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from ssljax import ops


class LossAux(NamedTuple):
  metrics: dict          # float32 scalars, logged as is ("loss" included)
  batch_stats: Any       # the network's updated mutable statistics
  state: Any             # the method state after this step's forward pass
  rep: jax.Array         # [n, w] encoder features the online probe reads
  # Optional: int [v·n], the positive partner of each row of a view-major
  # stack of the global batch (row r = view r // n of image r % n), in the
  # same row numbering; train_step.py reports how often a partner that is
  # another image shares the anchor's labels (`pair_label_metrics`).
  pairs: Any = None


def std_summary(x, prefix):
  """Collapse monitor of embeddings x [m, d] (rows over the global batch):
  {prefix_std_mean, prefix_std_min}, the mean and the minimum over the d
  dimensions of the per-dimension standard deviation (over the m rows,
  population: 1/m) of the L2-normalized rows; float32, no gradient.

  Normalized, so the scale of x (free in BYOL's and SimCLR's losses) does
  not matter: every value is in [0, 1], `std_mean` <= 1/sqrt(d) (equal when
  the rows spread isotropically around the origin), `std_min` = 0 when some
  direction carries no variation (dimensional collapse), `std_mean` = 0 when
  all rows are equal (complete collapse). Rows are centred on the first row
  before the usual two-pass std, so equal rows give exactly 0.
  """
  x = ops.l2_normalize(jax.lax.stop_gradient(x).astype(jnp.float32))
  std = jnp.std(x - x[:1], axis=0)
  return {f"{prefix}_std_mean": jnp.mean(std),
          f"{prefix}_std_min": jnp.min(std)}


def pair_label_metrics(pairs, labels):
  """{"pair_same_<key>": float32} for each `labels` key (int [n] labels of
  the global batch): among the rows r of `pairs` (LossAux.pairs, int [v·n];
  row r is image r % n) whose partner is ANOTHER image (pairs[r] % n !=
  r % n), the fraction whose partner has the same label. Self pairs and
  pairs of two views of one image are excluded (the method reports their
  shares); with no cross-image pair at all the value is 0, not NaN.
  Chance level is the probability that two images of a batch share the
  label, ≈ Σ_c p_c² (1/C for C balanced classes).
  """
  if not labels:
    return {}
  n = next(iter(labels.values())).shape[0]
  m = pairs.shape[0]
  if m % n:
    raise ValueError(f"LossAux.pairs has {m} rows, not a multiple of the "
                     f"batch's {n} examples.")
  rows = jnp.arange(m) % n
  other = pairs.astype(jnp.int32) % n
  cross = rows != other
  count = jnp.maximum(jnp.sum(cross), 1).astype(jnp.float32)
  return {f"pair_same_{k}": jnp.sum(cross & (y[rows] == y[other])).astype(
      jnp.float32) / count for k, y in labels.items()}


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
      step's PRNG key for the method (masks, noise, random walks). With
      `uses_labels`, also `labels=`: int [n] labels (data.label_key) of
      the global batch.
  init_state(variables) -> state: the initial method state.
  update_state(state, variables, step) -> (state, metrics): called after the
      optimizer update with the NEW variables (EMA targets follow them);
      `step` is the index of the step that produced them.
  lr_scales(params) -> a float per leaf of params (the probe's included,
      at 1): the multiple of the learning rate each parameter trains at; 0
      freezes it (no update, no weight decay, no optimizer state). None:
      1 everywhere.
  project_params(params) -> params: applied after every optimizer update
      (a constraint, e.g. SwAV's unit-norm prototypes). None: none.
  load_pretrained(params, batch_stats, read_variables) -> (params,
      batch_stats): host-side replacement of the initial variables (e.g. a
      pretrained encoder), called once when a run starts, not when it
      resumes. None: keep them. `read_variables(workdir, step)` -> (cfg,
      variables, step) reads another run (ssljax.saved_runs.read_variables,
      passed in by train_state: reading a run of any method needs the
      registry of methods, a layer above the methods).
  """
  loss: Callable
  init_state: Callable = _no_state
  update_state: Callable = _keep_state
  uses_labels: bool = False
  lr_scales: Optional[Callable] = None
  project_params: Optional[Callable] = None
  load_pretrained: Optional[Callable] = None


PROBE = "probe"  # parameter name of the online probe; no method may use it
ENCODER = "encoder"  # the backbone's submodule name in every method's network


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


def init_variables(net, sample_views, num_classes, seed, encoder_seed=None):
  """{"params", "batch_stats"} of `net` plus the online probe's parameters
  (params["probe"]) from `seed`: the one place train and eval initialize.

  Flax derives a submodule's init stream from the root key and its name,
  so the network and the probe (named "probe") drawn from one key are what
  one module holding both would draw, and adding or dropping the probe
  changes no other parameter. For the same reason `encoder_seed` (None:
  `seed`) can take the variables under ENCODER from another seed's init:
  they are then bit for bit those of a run seeded `encoder_seed`, and every
  other variable (heads, predictor, probe) stays `seed`'s.
  """
  root = lambda s: jax.random.fold_in(jax.random.PRNGKey(s), 1)
  key = root(seed)
  variables = net.init(key, sample_views, train=False)
  if encoder_seed is not None and encoder_seed != seed:
    if ENCODER not in variables["params"]:
      raise ValueError(
          f"encoder_seed = {encoder_seed}: this method's network has no "
          f"submodule {ENCODER!r} (it has {sorted(variables['params'])}); "
          "leave encoder_seed unset.")
    other = net.init(root(encoder_seed), sample_views, train=False)
    variables = {col: {**tree, ENCODER: other[col][ENCODER]}
                 if ENCODER in tree else tree
                 for col, tree in variables.items()}
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
