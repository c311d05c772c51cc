"""MVEB's training step equals wlj6816/MVEB's, in float64.

The official step (project/model.py, project/pretrainer.py,
project/entropy.py), transcribed with tests/recipe.py: torchvision
ResNet-50 with zero_init_residual, projector Linear (no bias) + BN + ReLU
twice and a last Linear with bias, a momentum target deep-copied from the
online network; SyncBatchNorm on every view separately. At step k: the
rate (warm-up from 1e-3·lr, then lr_min + ½(lr − lr_min)(1 + cos(π(k −
warm-up)/T)), T all steps) and the momentum mm(k) = 1 − (1 − 0.996)(cos(π
k/T) + 1)/2; the online forward of every view (L2-normalized); then the
target's update ξ ← mm·ξ + (1 − mm)·θ from the online weights before this
step's update, parameters only, and its train-mode forward of the two
global views (its BN keeps its own running statistics); each worker's
loss −A − λ·U on its own rows (alignment with the other global view's
target, local views with the mean of both targets; the von Mises–Fisher
score estimate on its own rows, τ the median of 1 − S, ≥ 0.1, η = 0.01);
DDP's mean over W workers; LARS (two groups by ndim, the rate after the
momentum). ssljax runs configs/mveb_resnet50_imagenet.py shrunk, with 2
global views and 1 local, on 4 devices against W = 4 workers; online and
target parameters and BN statistics are compared after every step.
"""

import copy
import math

import torch
import torch.nn.functional as F

from tests import helpers
from tests import recipe

W = 4
K = 6
RTOL = 1e-6


def _config():
  cfg = recipe.shrink(helpers.load_config("mveb_resnet50_imagenet"),
                      projector="32-32-32", num_steps=K, warmup_steps=2)
  cfg.data.num_local = 1
  cfg.data.local_size = 32  # the least the ImageNet stem takes
  return cfg


def lr_at(k, base, warmup, total):
  """adjust_lr of project/pretrainer.py."""
  lo = 1e-3 * base
  if k < warmup:
    return (base - lo) * k / warmup + lo
  return lo + 0.5 * (base - lo) * (1 + math.cos(math.pi * (k - warmup)
                                                / total))


def momentum_at(k, total, base=0.996):
  return 1 - (1 - base) * (math.cos(math.pi * k / total) + 1) / 2


def entropy_surrogate(z, eta=0.01, min_tau=0.1):
  """(1/n) Σ_i ⟨−sg(ŝ_i), z_i⟩ of project/entropy.py for unit rows z."""
  with torch.no_grad():
    s = z @ z.T
    n = z.shape[0]
    tau = torch.topk((1 - s).flatten(), n * n // 2).values[-1]
    tau = torch.clamp(tau, min=min_tau)
    kern = torch.exp(s / tau)
    g = kern.sum(1, keepdim=True) * z / tau
    score = -torch.linalg.solve(kern + eta * torch.eye(n, dtype=z.dtype), g)
  return (-score * z).sum(1).mean()


class Official(torch.nn.Module):
  """SiameseNet of project/model.py at the config's sizes."""

  def __init__(self, cfg):
    super().__init__()
    self.backbone, self.projector = recipe.official_joint(
        cfg, hidden_bias=False, last_bias=True)
    self.target_backbone = copy.deepcopy(self.backbone)
    self.target_projector = copy.deepcopy(self.projector)
    for p in self.target_parameters():
      p.requires_grad_(False)
    self.cfg = cfg

  def target_parameters(self):
    return [*self.target_backbone.parameters(),
            *self.target_projector.parameters()]

  def online_parameters(self):
    return [*self.backbone.parameters(), *self.projector.parameters()]

  def worker_losses(self, views, mm):
    z = [F.normalize(self.projector(self.backbone(x)), dim=1) for x in views]
    with torch.no_grad():
      for xi, th in zip(self.target_parameters(), self.online_parameters()):
        xi.mul_(mm).add_(th, alpha=1 - mm)
      h1, h2 = (self.target_backbone(x) for x in views[:2])
      t1, t2 = (F.normalize(self.target_projector(h), dim=1)
                for h in (h1, h2))
    out, v = [], len(views)
    for w in range(W):
      zw = [recipe.shards(x, W)[w] for x in z]
      a1, a2 = recipe.shards(t1, W)[w], recipe.shards(t2, W)[w]
      align = (zw[0] * a2).sum(1).mean() + (zw[1] * a1).sum(1).mean()
      for x in zw[2:]:
        align = align + (x * (a1 + a2) / 2).sum(1).mean()
      ent = sum(entropy_surrogate(x) for x in zw) / v
      out.append(-align / v - self.cfg.loss.lambd * ent)
    return out


def _state(official, next_mm):
  """Online and target tensors. The official code moves the target at the
  start of the next step (with its momentum next_mm) from the weights this
  step left; ssljax right after this step: the same update, applied here
  to a copy so that both sides are compared at one point."""
  out = {}
  for name in ("backbone", "projector"):
    online = getattr(official, name)
    target = getattr(official, f"target_{name}")
    out.update(recipe.state_dict(online, name))
    out.update(recipe.state_dict(target, f"target.{name}"))
    for (key, xi), th in zip(target.named_parameters(), online.parameters()):
      out[f"target.{name}.{key}"] = (
          next_mm * xi + (1 - next_mm) * th).detach().numpy()
  return out


def _ssljax_state(params, stats, method_state):
  out = recipe.joint_to_torch(params, stats)
  t = method_state["ema"]
  out.update({"target." + k: v for k, v in recipe.joint_to_torch(
      t["params"], t["batch_stats"]).items()})
  return out


def test_mveb_init_is_the_official_init():
  cfg, params, stats = recipe.init_variables("mveb_resnet50_imagenet",
                                             "512-512-512")
  torch.manual_seed(0)
  official = Official(cfg)
  want = {**recipe.state_dict(official.backbone, "backbone"),
          **recipe.state_dict(official.projector, "projector")}
  problems = recipe.compare_init(recipe.joint_to_torch(params, stats), want)
  assert not problems, "\n".join(problems)


def _max_errors(cfg):
  torch.manual_seed(0)
  official = Official(cfg).double()
  o = cfg.optimizer
  params = official.online_parameters()
  lars = recipe.LARS([{"params": [p for p in params if p.ndim > 1]},
                      {"params": [p for p in params if p.ndim == 1]}],
                     weight_decay=o.weight_decay, momentum=o.momentum,
                     eta=o.trust_coefficient)
  base_lr = o.base_lr * cfg.batch_size / 256

  def step(k, views):
    for g in lars.param_groups:
      g["lr"] = lr_at(k, base_lr, 2, K)
    recipe.ddp_average(official, official.worker_losses(
        views, momentum_at(k, K)))
    lars.step()

  return recipe.step_errors(
      cfg, recipe.load_joint(official.backbone, official.projector), step,
      lambda k: _state(official, momentum_at(k + 1, K)), _ssljax_state,
      num_workers=W, with_method_state=True)


def test_mveb_step_equals_the_official_step():
  for step, (err, worst) in enumerate(_max_errors(_config())):
    assert err <= RTOL, (step, worst)
