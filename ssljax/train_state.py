"""The train state and everything static around it, built from a config.

`setup(cfg, ...)` -> Setup: the method's networks and objective, the
optimizer (the method's on its networks, AdamW on the online probe, frozen
parameters without optimizer state), the views' specs, the mesh and the
step counts. `init_state(s, seed)` -> TrainState, created directly in its
sharding: replicated, or split over the mesh's "fsdp" axis with `mesh.fsdp`
> 1 (`leaf_sharding`). The step that updates it: ssljax.train_step; the
loop: ssljax.train.
"""

import dataclasses
import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from ssljax import methods
from ssljax import models
from ssljax import optim
from ssljax import saved_runs
from ssljax import validate
from ssljax.data import augment
from ssljax.data import pipeline


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any                # the method's networks + params["probe"]
  batch_stats: Any
  opt_state: Any
  rng: jax.Array             # raw uint32 key, saved in checkpoints
  method_state: Any          # method-owned pytree (EMA target, ...)
  num_skipped: jax.Array     # updates dropped for non-finite loss/grads
  first_nonfinite: jax.Array  # step of the first non-finite loss, or -1


@dataclasses.dataclass(frozen=True)
class Setup:
  """Everything static that the step functions close over."""
  cfg: ml_collections.ConfigDict
  net: Any                   # the method's networks (flax Module)
  objective: methods.Objective
  num_classes: int
  dtype: Any                 # compute dtype of the views
  tx: optax.GradientTransformation
  lr_fn: Any
  specs: tuple
  mesh: jax.sharding.Mesh
  total_steps: int
  steps_per_epoch: int


def _scale_by(lr_scales):
  """Multiplies each leaf's update by its `lr_scales(updates)` float (the
  tree's structure and names decide them, not its values)."""
  def update(updates, state, params=None):
    del params
    return jax.tree.map(lambda u, f: u * f, updates,
                        lr_scales(updates)), state
  return optax.GradientTransformation(lambda _: optax.EmptyState(), update)


def make_optimizer(cfg, total_steps, steps_per_epoch, lr_scales=None):
  """Method optimizer on everything but the probe; AdamW on the probe.
  `lr_scales` (Objective.lr_scales): per-parameter lr multiples; those at
  0 are frozen (optax.set_to_zero: no update and no optimizer state)."""
  tx, lr_fn = optim.make(cfg.optimizer, cfg.batch_size, total_steps,
                         steps_per_epoch)
  probe_tx = optax.adamw(cfg.probe.lr, weight_decay=cfg.probe.weight_decay)
  if lr_scales is None:
    label = lambda params: {k: ("probe" if k == methods.PROBE else "ssl")
                            for k in params}
    return optax.multi_transform({"ssl": tx, "probe": probe_tx},
                                 label), lr_fn

  def label(params):
    return jax.tree_util.tree_map_with_path(
        lambda path, f: ("probe" if path[0].key == methods.PROBE else
                         "frozen" if f == 0 else "ssl"), lr_scales(params))
  return optax.chain(
      optax.multi_transform({"ssl": tx, "probe": probe_tx,
                             "frozen": optax.set_to_zero()}, label),
      _scale_by(lr_scales)), lr_fn


make_mesh = pipeline.make_mesh
# Arrays smaller than this stay replicated under FSDP: splitting them saves
# little memory and costs a gather each.
FSDP_MIN_SIZE = 2**14


def setup(cfg, num_examples, num_classes, mesh=None):
  mesh = mesh or make_mesh(fsdp=(cfg.get("mesh") or {}).get("fsdp", 1))
  validate.check(cfg, num_devices=mesh.size,
                 num_processes=jax.process_count())
  pipeline.host_batch_size(cfg.batch_size, jax.process_count())
  steps_per_epoch = num_examples // cfg.batch_size
  total = cfg.get("num_steps") or int(cfg.num_epochs * steps_per_epoch)
  method = methods.get(cfg.method)
  net = method.build(cfg)
  objective = method.make_objective(cfg, net, mesh=mesh, total_steps=total)
  tx, lr_fn = make_optimizer(cfg, total, steps_per_epoch,
                             objective.lr_scales)
  specs = augment.view_specs(cfg.augment, cfg.data.num_global,
                             cfg.data.num_local)
  dtype = models.from_config(cfg.model).dtype
  return Setup(cfg, net, objective, num_classes, dtype, tx, lr_fn, specs,
               mesh, total, steps_per_epoch)


def leaf_sharding(mesh, x):
  """FSDP's rule for one array: split along "fsdp" on its largest
  dimension divisible by the axis size (ties: the first), replicated when
  the mesh has no "fsdp" axis, the array is small or nothing divides."""
  repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  if "fsdp" not in mesh.axis_names or x.size < FSDP_MIN_SIZE:
    return repl
  k = mesh.shape["fsdp"]
  for i in sorted(range(x.ndim), key=lambda i: -x.shape[i]):
    if x.shape[i] % k == 0:
      spec = [None] * x.ndim
      spec[i] = "fsdp"
      return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(
          *spec))
  return repl


def state_shardings(s):
  """Sharding of every leaf of the TrainState (parameters, optimizer and
  method state, BatchNorm statistics: `leaf_sharding`)."""
  shapes = jax.eval_shape(functools.partial(_init, s, 0))
  return jax.tree.map(lambda x: leaf_sharding(s.mesh, x), shapes)


def init_state(s, seed):
  """Initial TrainState, created directly in its sharding (replicated, or
  split along "fsdp")."""
  return jax.jit(functools.partial(_init, s, seed),
                 out_shardings=state_shardings(s))()


def _init(s, seed):
  variables = methods.init_variables(
      s.net, methods.sample_views(s.cfg.data), s.num_classes, seed,
      s.cfg.get("encoder_seed"))
  params, stats = variables["params"], variables["batch_stats"]
  net_params, _ = methods.split_probe(params)
  return TrainState(
      step=jnp.int32(0), params=params, batch_stats=stats,
      opt_state=s.tx.init(params), rng=run_rng(seed),
      method_state=s.objective.init_state(
          {"params": net_params, "batch_stats": stats}),
      num_skipped=jnp.int32(0), first_nonfinite=jnp.int32(-1))


def with_pretrained(s, state):
  """(`state` with the variables Objective.load_pretrained gives (a fresh
  run's start; the optimizer state stays: zeros, whatever the values),
  [{"workdir", "step"} of each checkpoint it read]: what the run records
  of where its weights came from)."""
  if s.objective.load_pretrained is None:
    return state, []
  read = []

  def read_variables(workdir, step=None):
    out = saved_runs.read_variables(workdir, step)
    read.append({"workdir": str(workdir), "step": int(out[2])})
    return out

  net_params, probe = methods.split_probe(state.params)
  net_params, stats = s.objective.load_pretrained(
      net_params, state.batch_stats, read_variables)
  put = lambda t, like: jax.device_put(
      jax.tree.map(jnp.asarray, t), jax.tree.map(lambda x: x.sharding, like))
  return state.replace(
      params=put(dict(net_params, **{methods.PROBE: probe}), state.params),
      batch_stats=put(stats, state.batch_stats)), read


def run_rng(seed):
  """TrainState.rng of a run seeded `seed`: what its draws derive from."""
  return jax.random.fold_in(jax.random.PRNGKey(seed), 2)
