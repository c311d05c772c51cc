"""VICReg's training step equals facebookresearch/vicreg's, in float64.

The official step (main_vicreg.py), transcribed in tests/recipe.py:
torchvision ResNet-50 with zero_init_residual, projector Linear(bias) + BN +
ReLU and a last Linear without bias, SyncBatchNorm, the invariance term on
each worker's local batch and the variance / covariance terms on the
gathered batch (FullGatherLayer: gradients all-reduced), DDP's mean over
the W workers, LARS (weight decay and trust ratio 0.001 on ≥2-D
parameters; the learning rate applied to the momentum buffer), warm-up
from 0 then cosine to 0.001 × base. ssljax runs configs/
vicreg_resnet50_imagenet.py shrunk (tests/recipe.py `shrink`) from the
same weights on the same batches, on 4 devices against W = 4 workers.
"""

import torch
import torch.nn.functional as F

from tests import helpers
from tests import recipe

W = 4  # simulated workers / devices
K = 6  # steps: 2 of warm-up, then the cosine to its end
RTOL = 1e-6  # max |ssljax − official| / max |official|, every tensor


def _config():
  return recipe.shrink(helpers.load_config("vicreg_resnet50_imagenet"),
                       projector="32-32-32", num_steps=K, warmup_steps=2)


class Official(torch.nn.Module):
  """VICReg of main_vicreg.py at the config's sizes."""

  def __init__(self, cfg):
    super().__init__()
    self.backbone, self.projector = recipe.official_joint(
        cfg, hidden_bias=True, last_bias=False)
    self.cfg = cfg

  def embed(self, x, y):
    """(hx, hy, zx, zy): representations and projections of the views
    (SyncBN: statistics over the global batch)."""
    hx, hy = self.backbone(x), self.backbone(y)
    return hx, hy, self.projector(hx), self.projector(hy)

  def worker_losses(self, x, y):
    return self.losses(*self.embed(x, y)[2:])

  def losses(self, zx, zy):
    """Each worker's loss: MSE on its own rows, std / cov on all rows."""
    c = self.cfg.loss
    n, d = zx.shape
    xc, yc = zx - zx.mean(0), zy - zy.mean(0)
    std_x = torch.sqrt(xc.var(dim=0) + 0.0001)
    std_y = torch.sqrt(yc.var(dim=0) + 0.0001)
    std_loss = (F.relu(1 - std_x).mean() / 2 + F.relu(1 - std_y).mean() / 2)
    off = lambda m: m.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()
    cov_loss = (off(xc.T @ xc / (n - 1)).pow(2).sum() / d
                + off(yc.T @ yc / (n - 1)).pow(2).sum() / d)
    return [c.sim_coeff * F.mse_loss(a, b) + c.std_coeff * std_loss
            + c.cov_coeff * cov_loss
            for a, b in zip(recipe.shards(zx, W), recipe.shards(zy, W))]


def _official_state(official):
  return {**recipe.state_dict(official.backbone, "backbone"),
          **recipe.state_dict(official.projector, "projector")}


def test_vicreg_init_is_the_official_init():
  cfg, params, stats = recipe.init_variables("vicreg_resnet50_imagenet",
                                             "512-512-512")
  torch.manual_seed(0)
  problems = recipe.compare_init(recipe.joint_to_torch(params, stats),
                                 _official_state(Official(cfg)))
  assert not problems, "\n".join(problems)


def official_lars(cfg, official):
  o = cfg.optimizer
  return recipe.LARS(official.parameters(), weight_decay=o.weight_decay,
                     momentum=o.momentum, eta=o.trust_coefficient)


def test_vicreg_step_equals_the_official_step():
  cfg = _config()
  torch.manual_seed(0)
  official = Official(cfg).double()
  lars = official_lars(cfg, official)
  base_lr = cfg.optimizer.base_lr * cfg.batch_size / 256

  def step(k, views):
    for g in lars.param_groups:
      g["lr"] = recipe.warmup_cosine_lr(k, base_lr, 2, K)
    recipe.ddp_average(official, official.worker_losses(*views))
    lars.step()

  errors = recipe.step_errors(
      cfg, recipe.load_joint(official.backbone, official.projector), step,
      lambda k: _official_state(official), num_workers=W)
  for k, (err, worst) in enumerate(errors):
    assert err <= RTOL, (k, worst)
