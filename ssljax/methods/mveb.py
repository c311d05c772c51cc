"""MVEB (Wen et al., TPAMI 2024): multi-view entropy bottleneck.

EMA target (encoder + projector, `ssljax.methods.ema`, cosine momentum
0.996 -> 1) that sees only the two global views; no predictor. Projector as
in wlj6816/MVEB: hidden Linear without bias + BN + ReLU, last Linear with
bias (2048-2048-2048). Online and target outputs are L2-normalized here;
the loss (`ssljax.losses.mveb`) aligns views with the other global view's
target and ascends a von Mises–Fisher-kernel Stein estimate of the
embedding entropy's gradient. Local crops (data.num_local) are online views
aligned with the mean of the two targets.
Config: projector, loss.{lambd (λ), eta (η), min_tau, score_scope},
ema.{base, schedule}.
"""

import jax
import ml_collections

from ssljax import losses
from ssljax.methods import base
from ssljax.methods import ema
from ssljax.methods import joint


def default_config():
  return ml_collections.ConfigDict(dict(
      projector="2048-2048-2048",
      loss=dict(lambd=0.01, eta=0.01, min_tau=0.1, score_scope="per_device"),
      ema=ema.default_config()))


def build(cfg):
  return joint.build(cfg, dict(spec=cfg.projector, hidden_bias=False,
                               last_bias=True))


def make_objective(cfg, net, *, mesh=None, total_steps):
  c = cfg.loss
  if c.score_scope not in ("per_device", "global"):
    raise ValueError(f"Unknown loss.score_scope {c.score_scope!r}; valid: "
                     "per_device, global.")

  def loss_fn(variables, state, views, key):
    del key
    out, stats = joint.forward(net, variables, views)
    target, _ = joint.forward(net, state["ema"], views[:2])
    target = jax.lax.stop_gradient(target)
    zs = [losses.l2_normalize(z) for z in out["z"]]
    t1, t2 = (losses.l2_normalize(t) for t in target["z"][:2])
    loss, metrics = losses.mveb(zs, t1, t2, lambd=c.lambd, eta=c.eta,
                                min_tau=c.min_tau, scope=c.score_scope,
                                mesh=mesh)
    return loss, base.LossAux(metrics, stats, state, out["rep"][0])

  return base.Objective(loss_fn, init_state=lambda v: {"ema": ema.init(v)},
                        update_state=ema.updater(cfg.ema, total_steps))
