"""MVEB (Wen et al., TPAMI 2024): multi-view entropy bottleneck.

EMA target (encoder + projector, cosine momentum 0.996 -> 1) that sees only
the two global views; no predictor. Projector as in wlj6816/MVEB: hidden
Linear without bias + BN + ReLU, last Linear with bias (2048-2048-2048).
Online and target outputs are L2-normalized here; the loss
(`ssljax.losses.mveb`) aligns views with the other global view's target and
ascends a von Mises–Fisher-kernel Stein estimate of the embedding entropy's
gradient. cfg.loss: lambd (λ), eta (η), min_tau, score_scope.
"""

from ssljax import losses

EMA = True


def heads(cfg):
  return {"projector": dict(spec=cfg.projector, hidden_bias=False,
                            last_bias=True)}


def loss(out, target, cfg, mesh=None):
  zs = [losses.l2_normalize(z) for z in out["z"]]
  t1, t2 = (losses.l2_normalize(t) for t in target["z"][:2])
  c = cfg.loss
  return losses.mveb(zs, t1, t2, lambd=c.lambd, eta=c.eta,
                     min_tau=c.min_tau, scope=c.score_scope, mesh=mesh)
