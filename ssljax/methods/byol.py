"""BYOL (Grill et al., NeurIPS 2020): bootstrap your own latent.

EMA target (encoder + projector; cosine momentum base -> 1) on the two
global views; online predictor on the projector output. Projector and
predictor as in deepmind-research/byol: Linear (bias) + BN + ReLU, Linear
(bias): 4096-256. Loss `ssljax.losses.byol`: 2 − 2·cos per direction, the
two directions summed, averaged over the batch.
"""

from ssljax import losses

EMA = True


def heads(cfg):
  out_p, out_z = (str(x).split("-")[-1] for x in (cfg.predictor,
                                                 cfg.projector))
  if out_p != out_z:
    raise ValueError(f"BYOL's predictor must output the projector's width: "
                     f"predictor {cfg.predictor!r} ends in {out_p}, projector "
                     f"{cfg.projector!r} in {out_z}.")
  return {"projector": dict(spec=cfg.projector, hidden_bias=True,
                            last_bias=True),
          "predictor": dict(spec=cfg.predictor, hidden_bias=True,
                            last_bias=True)}


def loss(out, target, cfg, mesh=None):
  del cfg, mesh
  return losses.byol(out["p"][0], out["p"][1], target["z"][0],
                     target["z"][1])
