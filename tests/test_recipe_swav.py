"""SwAV's training step equals facebookresearch/swav's, in float64.

The official step (main_swav.py, src/resnet50.py, src/utils.py, apex's
LARC), transcribed in PyTorch with tests/recipe.py: torchvision's ResNet-50
init without zero_init_residual, head Linear (bias) + BN + ReLU + Linear
(bias), L2 normalization, prototypes a Linear without bias; at every step
the learning rate (np.linspace warm-up from 0.3/4.8 of the peak, reaching
it at the warm-up's last step, then cosine to 0.001 × peak), the
prototypes normalized, the crops of one size through the backbone in one
pass and the head over all crops (SyncBN: one group over all workers, the
bs256 scripts', and 2 process groups of 2 workers, the 800-epoch script's
groups of 8 GPUs scaled down; rank 0's running statistics); per worker, for each global crop the Sinkhorn codes of its
detached scores over the global batch (ε 0.05, 3 iterations), predicted
from every other crop at temperature 0.1; DDP's mean; while frozen the
prototypes' gradient is None (SGD skips them); SGD with momentum wrapped
by LARC (trust 0.001, clip False) on every parameter. ssljax runs
configs/swav_resnet50_imagenet.py shrunk: 2 crops of 48 px and 2 of 32 px,
32 prototypes frozen for the first 2 steps, on 4 devices against W = 4
workers; every parameter and BN statistic after every step (the
prototypes normalized, as the official code does at the next step's
start).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from tests import helpers
from tests import recipe

W = 4
K = 6
RTOL = 1e-6
FREEZE = 2


def _config():
  cfg = recipe.shrink(helpers.load_config("swav_resnet50_imagenet"),
                      projector="32-16", image_size=48, num_steps=K,
                      warmup_steps=2)
  cfg.data.num_local = 2
  cfg.data.local_size = 32
  cfg.swav.num_prototypes = 32
  cfg.swav.freeze_prototypes_steps = FREEZE
  return cfg


def lr_at(k, peak, warmup, total, start, final):
  """main_swav.py's schedule: np.linspace(start, peak, warmup), then the
  cosine over the remaining steps."""
  if k < warmup:
    return np.linspace(start, peak, warmup)[k]
  t = k - warmup
  return final + 0.5 * (peak - final) * (1 + math.cos(math.pi * t
                                                       / (total - warmup)))


def sinkhorn(out, eps=0.05, iters=3):
  """distributed_sinkhorn over the global batch (all workers' rows)."""
  q = torch.exp(out / eps).T
  b, k = q.shape[1], q.shape[0]
  q = q / q.sum()
  for _ in range(iters):
    q = q / q.sum(1, keepdim=True) / k
    q = q / q.sum(0, keepdim=True) / b
  return (q * b).T


class Official(torch.nn.Module):
  """resnet50 of src/resnet50.py at the config's sizes."""

  def __init__(self, cfg):
    super().__init__()
    self.backbone, dims = recipe.trunk(cfg)
    self.projection_head = recipe.mlp(dims, hidden_bias=True, last_bias=True)
    self.prototypes = torch.nn.Linear(dims[-1], cfg.swav.num_prototypes,
                                      bias=False)
    self.cfg = cfg

  def group_scores(self, crops):
    """One SyncBN group's forward (its workers' rows of every crop): the
    crops of one size through the backbone together, the head over all."""
    sizes = [c.shape[-1] for c in crops]
    feats, start = [], 0
    for i in range(1, len(crops) + 1):
      if i == len(crops) or sizes[i] != sizes[start]:
        feats.append(self.backbone(torch.cat(crops[start:i])))
        start = i
    z = F.normalize(self.projection_head(torch.cat(feats)), dim=1)
    return self.prototypes(z)

  def worker_losses(self, crops, groups=1):
    """`groups` SyncBN process groups of W / groups consecutive workers;
    the running statistics kept are group 0's (rank 0 saves them)."""
    with torch.no_grad():
      self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
    n, v, c = crops[0].shape[0], len(crops), self.cfg.swav
    m = n // groups  # rows of each crop per group
    modules = [mod for mod in self.modules() if mod._buffers]
    before = [dict(mod._buffers) for mod in modules]
    parts, group0 = [], None
    for g in range(groups):
      # Fresh buffer tensors per group (BN updates them in place and
      # autograd keeps the old ones); group 0's stay.
      for mod, b in zip(modules, before):
        mod._buffers.update({k: t.clone() for k, t in b.items()})
      parts.append(self.group_scores([x[g * m:(g + 1) * m] for x in crops]))
      if g == 0:
        group0 = [dict(mod._buffers) for mod in modules]
    for mod, b in zip(modules, group0):
      mod._buffers.update(b)
    scores = torch.cat([p[i * m:(i + 1) * m] for i in range(v)
                        for p in parts])
    q = [sinkhorn(scores[n * i:n * (i + 1)].detach(), c.epsilon,
                  c.sinkhorn_iterations) for i in range(2)]
    out = []
    for w in range(W):
      rows = lambda i: slice(n * i + w * n // W, n * i + (w + 1) * n // W)
      loss = 0
      for i in range(2):
        qw = q[i][w * n // W:(w + 1) * n // W]
        sub = 0
        for j in [j for j in range(v) if j != i]:
          x = scores[rows(j)] / c.temperature
          sub = sub - torch.mean(torch.sum(qw * F.log_softmax(x, dim=1), 1))
        loss = loss + sub / (v - 1)
      out.append(loss / 2)
    return out

  def state(self):
    """Every tensor, the prototypes normalized (as the next step does)."""
    out = {**recipe.state_dict(self.backbone, "backbone"),
           **recipe.state_dict(self.projection_head, "projector")}
    out["prototypes"] = F.normalize(self.prototypes.weight,
                                    dim=1).detach().numpy()
    return out


def _ssljax_state(params, stats):
  out = recipe.joint_to_torch(params, stats)
  out["prototypes"] = np.asarray(params["prototypes"]["kernel"]).T
  return out


def _load(official):
  def load(params, stats):
    params["encoder"], stats["encoder"] = recipe.encoder_to_flax(
        official.backbone, params["encoder"], stats["encoder"])
    params["projector"], stats["projector"] = recipe.mlp_to_flax(
        official.projection_head)
    params["prototypes"] = {"kernel": F.normalize(
        official.prototypes.weight, dim=1).detach().numpy().T}
    return params, stats
  return load


def test_swav_init_is_the_official_init():
  cfg, params, stats = recipe.init_variables("swav_resnet50_imagenet",
                                             "512-128")
  torch.manual_seed(0)
  problems = recipe.compare_init(_ssljax_state(params, stats),
                                 Official(cfg).state())
  assert not problems, "\n".join(problems)


def _max_errors(cfg, groups=1):
  torch.manual_seed(0)
  official = Official(cfg).double()
  o = cfg.optimizer
  larc = recipe.LARC(official.parameters(), o.weight_decay, o.momentum,
              o.trust_coefficient)
  peak = o.base_lr * cfg.batch_size / 256

  def step(k, crops):
    recipe.ddp_average(official, official.worker_losses(crops, groups))
    if k < FREEZE:
      official.prototypes.weight.grad = None
    larc.step(lr_at(k, peak, 2, K, o.warmup_start_factor * peak,
                    o.end_factor * peak))

  return recipe.step_errors(cfg, _load(official), step,
                            lambda k: official.state(), _ssljax_state,
                            num_workers=W)


def test_swav_step_equals_the_official_step():
  """One SyncBN group over all workers: the bs256 scripts'."""
  cfg = _config()
  cfg.model.bn_groups = 1
  for step, (err, worst) in enumerate(_max_errors(cfg)):
    assert err <= RTOL, (step, worst)


def test_swav_step_with_syncbn_groups_equals_the_official_step():
  """The 800-epoch script's SyncBN process groups (the config's
  bn_groups = 8), scaled down: 2 groups of 2 workers."""
  cfg = _config()
  cfg.model.bn_groups = 2
  for step, (err, worst) in enumerate(_max_errors(cfg, groups=2)):
    assert err <= RTOL, (step, worst)
