"""MVEB (Wen et al., TPAMI 2024): multi-view entropy bottleneck.

EMA target (encoder + projector, `ssljax.methods.ema`, cosine momentum
0.996 -> 1) that sees only the two global views; no predictor. Projector as
in wlj6816/MVEB: hidden Linear without bias + BN + ReLU, last Linear with
bias (2048-2048-2048). Online and target outputs are L2-normalized here;
the loss (`ssljax.losses.mveb`) aligns views with the other global view's
target and ascends a von Mises–Fisher-kernel Stein estimate of the
embedding entropy's gradient. Local crops (data.num_local) are online views
aligned with the mean of the two targets.
Config: projector, loss.{lambd (λ), eta (η), min_tau, score_scope,
lambd_reference}, ema.{base, schedule, next_step_momentum}. The official
step (tests/test_recipe_mveb.py) needs ema.next_step_momentum and
optimizer.cosine_over_total, which configs/mveb_resnet50_imagenet.py sets.

`loss.lambd_reference` (ssljax's option, not the paper's; default "" = off):
the entropy term's push on a sample is λ·‖ŝ⊥‖ (ŝ⊥: the score estimate's part
tangent to the sphere), and ‖ŝ⊥‖ grows with the samples per estimate n and
falls with the dimension d (benchmarks/mveb_balance.py). The paper chose
λ = 0.01 at n = 128 per GPU and d = 2048; at another (n, d) the same λ is
another balance between the entropy push and the alignment pull. With
"N_REF,D_REF" (the paper's: "128,2048") the loss uses
λ_eff = λ · ‖ŝ⊥‖(N_REF, D_REF) / ‖ŝ⊥‖(n, d), both norms measured once, at
build time, on uniform samples on the sphere (the distribution the entropy
term drives towards; mean of 3 fixed draws), n = the samples of one
estimate here (the per-device batch, or the global batch with
score_scope="global") and d = the projector's output width. Uniform is a
choice: on concentrated batches the ratio is smaller (2.6 at resultant
length 0.3, 1.9 at 0.9, vs 4.1 uniform for 128×2048 vs 256×512), so the
correction is an upper bound of the one a trained batch would need. λ_eff
is logged as `lambd_eff`.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ssljax import losses
from ssljax import ops
from ssljax.methods import base
from ssljax.methods import ema
from ssljax.methods import joint


def default_config():
  return ml_collections.ConfigDict(dict(
      projector="2048-2048-2048",
      loss=dict(lambd=0.01, eta=0.01, min_tau=0.1, score_scope="per_device",
                lambd_reference=""),
      ema=ema.default_config()))


def build(cfg):
  return joint.build(cfg, dict(spec=cfg.projector, hidden_bias=False,
                               last_bias=True))


def uniform_sphere(key, n, d):
  """[n, d] rows drawn uniformly on the unit sphere."""
  g_nd = jax.random.normal(key, (n, d))
  return g_nd / jnp.linalg.norm(g_nd, axis=1, keepdims=True)


@functools.partial(jax.jit, static_argnames=("eta", "min_tau"))
def tangential_score_norm(z_nd, *, eta=0.01, min_tau=0.1):
  """(mean_i ‖ŝ⊥_i‖, resultant length ‖mean z‖, τ) of unit rows z_nd."""
  s_nd, tau = ops.vmf_score(z_nd, eta=eta, min_tau=min_tau)
  s_tan = s_nd - jnp.sum(s_nd * z_nd, axis=1, keepdims=True) * z_nd
  return (jnp.linalg.norm(s_tan, axis=1).mean(),
          jnp.linalg.norm(z_nd.mean(0)), tau)


def uniform_push(n, d, *, eta=0.01, min_tau=0.1, draws=3):
  """mean ‖ŝ⊥‖ over `draws` fixed draws of n uniform samples in d dims."""
  keys = jax.random.split(jax.random.key(0), draws)
  return float(np.mean([tangential_score_norm(
      uniform_sphere(k, n, d), eta=eta, min_tau=min_tau)[0] for k in keys]))


def parse_reference(spec):
  """"N,D" -> (N, D); "" -> None."""
  if not spec:
    return None
  try:
    n, d = (int(x) for x in str(spec).split(","))
  except ValueError:
    n = d = 0
  if n < 2 or d < 2:
    raise ValueError(f"loss.lambd_reference = {spec!r}: expected \"N,D\" "
                     "(samples per estimate, embedding dimension; the "
                     "paper's: \"128,2048\") or \"\" for λ as given.")
  return n, d


def effective_lambd(cfg, num_devices):
  """λ, rescaled to the reference balance when loss.lambd_reference is set
  (module docstring)."""
  c = cfg.loss
  ref = parse_reference(c.get("lambd_reference", ""))
  if ref is None:
    return float(c.lambd)
  n = cfg.batch_size // (num_devices if c.score_scope == "per_device" else 1)
  d = int(str(cfg.projector).split("-")[-1])
  push = functools.partial(uniform_push, eta=c.eta, min_tau=c.min_tau)
  return float(c.lambd) * push(*ref) / push(n, d)


def make_objective(cfg, net, *, mesh=None, total_steps):
  c = cfg.loss
  if c.score_scope not in ("per_device", "global"):
    raise ValueError(f"Unknown loss.score_scope {c.score_scope!r}; valid: "
                     "per_device, global.")
  # Devices the batch is split over: every mesh axis (data × fsdp).
  lambd = effective_lambd(cfg, mesh.size if mesh else 1)

  def loss_fn(variables, state, views, key):
    del key
    out, stats = joint.forward(net, variables, views)
    target, target_stats = joint.forward(net, state["ema"], views[:2])
    target = jax.lax.stop_gradient(target)
    state = ema.with_stats(state, target_stats)
    zs = [losses.l2_normalize(z) for z in out["z"]]
    t1, t2 = (losses.l2_normalize(t) for t in target["z"][:2])
    loss, metrics = losses.mveb(zs, t1, t2, lambd=lambd, eta=c.eta,
                                min_tau=c.min_tau, scope=c.score_scope,
                                mesh=mesh)
    if c.get("lambd_reference"):
      metrics = dict(metrics, lambd_eff=jnp.float32(lambd))
    return loss, base.LossAux(metrics, stats, state, out["rep"][0])

  return base.Objective(loss_fn, init_state=lambda v: {"ema": ema.init(v)},
                        update_state=ema.updater(cfg.ema, total_steps))
