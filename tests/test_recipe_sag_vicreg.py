"""SAG-VICReg's training step: VICReg's official step plus the walk pairs.

SAG-VICReg has no public code. Its recipe is VICReg's (configs/
sag_vicreg_resnet50_imagenet.py equals configs/vicreg_resnet50_imagenet.py
but for `pairing`: tests/test_configs.py), so the official part of the
step is facebookresearch/vicreg's (tests/test_recipe_vicreg.py), and the
pairing term is ssljax's own design, transcribed here in PyTorch from the
docstring of ssljax.methods.sag_vicreg, not from its code:

  loss = VICReg's + λ·α_t·(pair − repr),  pair = mean_{a,k} (Y_ak − Y_p(a),k)²

over the global batch Y = [z1; z2], α_t = weight·min(1, (t − w + 1)/r)
after w warm-up steps, partners from the graph of this step's online
encoder features, gradient through both ends of a pair. The walk's draw is
random (its distribution is tested in tests/test_ops.py); here it is
replaced on both sides by a deterministic rule on the same features (each
row's most similar row of another image), which keeps what the step
decides: which features the graph sees, which rows pair, the schedule of α
and the gradient through the pairs. 6 float64 steps, pairing from step 2
at α = 0.25, then 0.5; W = 4 workers against 4 devices; rtol 1e-6.
"""

import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F

from ssljax import ops
from tests import helpers
from tests import recipe
from tests import test_recipe_vicreg

W = 4
K = 6
RTOL = 1e-6


def _config():
  cfg = recipe.shrink(helpers.load_config("sag_vicreg_resnet50_imagenet"),
                      projector="32-32-32", num_steps=K, warmup_steps=2)
  cfg.pairing.update(warmup_fraction=2 / K, ramp_fraction=2 / K)
  return cfg


def _nearest_other_image(sim, n):
  """Row a's partner: the most similar row that is not a view of a's image
  (rows a and a ± n are; `sim` [2n, 2n])."""
  rows = np.arange(2 * n)
  same = (rows[:, None] % n) == (rows[None, :] % n)
  return np.where(same, -np.inf, sim).argmax(1)


def _jax_partners(key, z_nd, **kw):
  del key
  n = z_nd.shape[0] // kw["num_views"]
  u = z_nd / jnp.linalg.norm(z_nd, axis=1, keepdims=True)
  rows = jnp.arange(2 * n)
  same = (rows[:, None] % n) == (rows[None, :] % n)
  sim = jnp.where(same, -jnp.inf, u @ u.T)
  return jnp.argmax(sim, axis=1).astype(jnp.int32)


def _alpha(p, t):
  start, ramp = round(p.warmup_fraction * K), round(p.ramp_fraction * K)
  return 0.0 if t < start else p.weight * min(1.0, (t - start + 1) / ramp)


def test_sag_vicreg_step_equals_vicreg_official_plus_pairs(monkeypatch):
  monkeypatch.setattr(ops, "random_walk_partners", _jax_partners)
  cfg = _config()
  torch.manual_seed(0)
  official = test_recipe_vicreg.Official(cfg).double()
  lars = test_recipe_vicreg.official_lars(cfg, official)
  base_lr = cfg.optimizer.base_lr * cfg.batch_size / 256
  alphas = []

  def step(k, views):
    for g in lars.param_groups:
      g["lr"] = recipe.warmup_cosine_lr(k, base_lr, 2, K)
    alpha = _alpha(cfg.pairing, k)
    alphas.append(alpha)
    hx, hy, zx, zy = official.embed(*views)
    h = F.normalize(torch.cat([hx, hy]).detach()).numpy()
    partners = _nearest_other_image(h @ h.T, cfg.batch_size)
    zz = torch.cat([zx, zy])
    pair_rows = (zz - zz[partners]).pow(2).mean(1)
    n = cfg.batch_size
    losses = []
    for w, (loss, a, b) in enumerate(zip(
        official.losses(zx, zy), recipe.shards(zx, W), recipe.shards(zy, W))):
      rows = torch.cat([recipe.shards(pair_rows[:n], W)[w],
                        recipe.shards(pair_rows[n:], W)[w]])
      losses.append(loss + cfg.loss.sim_coeff * alpha
                    * (rows.mean() - F.mse_loss(a, b)))
    recipe.ddp_average(official, losses)
    lars.step()

  errors = recipe.step_errors(
      cfg, recipe.load_joint(official.backbone, official.projector), step,
      lambda k: test_recipe_vicreg._official_state(official), num_workers=W)
  for k, (err, worst) in enumerate(errors):
    assert err <= RTOL, (k, worst)
  assert alphas == [0, 0, 0.25, 0.5, 0.5, 0.5]
