"""Barlow Twins' training step equals facebookresearch/barlowtwins', float64.

The official step (main.py), transcribed with tests/recipe.py: torchvision
ResNet-50 with zero_init_residual, projector Linear (no bias) + BN + ReLU
and a last Linear without bias, a BatchNorm1d(affine=False) on each view's
embedding, SyncBatchNorm; the cross-correlation divided by the global batch
on each worker and all-reduced (not differentiated: each worker's backward
sees its own share), DDP's mean over the W workers: the applied gradient
is the true one / W, which ssljax reproduces with loss.ddp_world_size = W.
LARS with two groups (weights: 0.2 × batch / 256; biases and BN: 0.0048 ×
batch / 256; both filters on), warm-up from 0, cosine to 0.001 × the peak.
ssljax runs configs/barlow_twins_resnet50_imagenet.py shrunk, from the same
weights on the same batches, on 4 devices against W = 4 workers. The loss's
BatchNorm1d keeps running statistics that nothing reads; not compared.
"""

import torch

from tests import helpers
from tests import recipe

W = 4
K = 6
RTOL = 1e-6


def _config(world=W):
  cfg = recipe.shrink(helpers.load_config("barlow_twins_resnet50_imagenet"),
                      projector="32-32-32", num_steps=K, warmup_steps=2)
  cfg.loss.ddp_world_size = world  # the simulated workers (recipe: 32)
  return cfg


class Official(torch.nn.Module):
  """BarlowTwins of main.py at the config's sizes."""

  def __init__(self, cfg):
    super().__init__()
    self.backbone, self.projector = recipe.official_joint(
        cfg, hidden_bias=False, last_bias=False)
    self.bn = torch.nn.BatchNorm1d(
        self.projector[-1].out_features, affine=False)
    self.cfg = cfg

  def worker_losses(self, y1, y2):
    z1 = self.bn(self.projector(self.backbone(y1)))  # SyncBN: global batch
    z2 = self.bn(self.projector(self.backbone(y2)))
    n, d = z1.shape
    total = z1.T @ z2 / n
    out = []
    for a, b in zip(recipe.shards(z1, W), recipe.shards(z2, W)):
      c = recipe.nondiff_all_reduce(a.T @ b / n, total)
      off = c.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()
      out.append(torch.diagonal(c).add(-1).pow(2).sum()
                 + self.cfg.loss.lambd * off.pow(2).sum())
    return out

  def optimizer(self):
    o = self.cfg.optimizer
    weights = [p for p in self.parameters() if p.ndim > 1]
    biases = [p for p in self.parameters() if p.ndim == 1]
    return recipe.LARS([{"params": weights}, {"params": biases}],
                       weight_decay=o.weight_decay, momentum=o.momentum,
                       eta=o.trust_coefficient)


def _official_state(official):
  return {**recipe.state_dict(official.backbone, "backbone"),
          **recipe.state_dict(official.projector, "projector")}


def test_barlow_twins_init_is_the_official_init():
  cfg, params, stats = recipe.init_variables(
      "barlow_twins_resnet50_imagenet", "512-512-512")
  torch.manual_seed(0)
  problems = recipe.compare_init(recipe.joint_to_torch(params, stats),
                                 _official_state(Official(cfg)))
  assert not problems, "\n".join(problems)


def _max_errors(cfg):
  """Per step, the largest relative difference of any tensor."""
  torch.manual_seed(0)
  official = Official(cfg).double()
  lars = official.optimizer()

  def step(k, views):
    lr = recipe.warmup_cosine_lr(k, cfg.batch_size / 256, 2, K)
    lars.param_groups[0]["lr"] = lr * 0.2  # --learning-rate-weights
    lars.param_groups[1]["lr"] = lr * 0.0048  # --learning-rate-biases
    recipe.ddp_average(official, official.worker_losses(*views))
    lars.step()

  return recipe.step_errors(
      cfg, recipe.load_joint(official.backbone, official.projector), step,
      lambda k: _official_state(official), num_workers=W)


def test_barlow_twins_step_equals_the_official_step():
  for step, (err, worst) in enumerate(_max_errors(_config())):
    assert err <= RTOL, (step, worst)
