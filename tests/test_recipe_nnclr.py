"""NNCLR's training step equals solo-learn's, in float64.

NNCLR has no official code; the reference is vturrisi/solo-learn
(solo/methods/nnclr.py, solo/losses/nnclr.py, solo/methods/base.py,
solo/utils/lars.py, solo/utils/lr_scheduler.py), transcribed in PyTorch
with tests/recipe.py: torchvision's ResNet and init (no zero-initialized
residual BN); the projector Linear + BN + ReLU twice then Linear + BN (all
with bias, BN affine), the predictor Linear + BN + ReLU, Linear, on the
projection before it is normalized; SyncBatchNorm, each view in its own
pass; each view's nearest neighbour (cosine) in the support set as it was
before the step; each worker's loss CE(n̂1 p̂2ᵀ/τ)/2 + CE(n̂2 p̂1ᵀ/τ)/2 on its
own rows against the gathered predictions (a gather whose backward
all-reduces), DDP's mean; view 1's normalized projections of the whole
batch written into the FIFO after the step; solo-learn's LARS (trust
η‖p‖/(‖g‖ + wd‖p‖ + 1e-8) capped at the rate, 1-D parameters neither
adapted nor decayed, SGD momentum, the rate after it); the warm-up linear
from 3e-5 reaching the peak at its last step, then cosine to 0. Its online
classifier reads detached features with its own parameter group, so it
does not change these weights and is left out (ssljax's probe has its own
optimizer). ssljax runs configs/nnclr_resnet50_imagenet.py shrunk, with a
support set of 3 batches (it wraps during the 6 steps), on 4 devices
against W = 4 workers; parameters, BN statistics, the support set and its
pointer are compared after every step. At trunk width 8 and batch 32: at
the other tests' width 4 and batch 16 this step is so ill-conditioned that
weights perturbed by 1e-12 differ by O(1) after 5 steps (float64 rounding
alone reached 2e-6 there); here by 7e-5, and ssljax is within 3e-8.
Flipped, each fails: larc_clip off (step 0: 1.6e-3), larc_exclude_bias_norm
off (step 1: 1.1), warmup_linspace off (step 0: 7.9e-6), the VICReg-style
LARS (step 0: 1.6e-3), head.last_bn_affine off (the weights do not load).
"""

import numpy as np
import torch
import torch.nn.functional as F

from tests import helpers
from tests import recipe

W = 4
K = 6
RTOL = 1e-6
WARMUP_START = 3e-5


def _config():
  cfg = recipe.shrink(helpers.load_config("nnclr_resnet50_imagenet"),
                      projector="32-32-16", num_steps=K, warmup_steps=2,
                      model_width=8, batch_size=32)
  cfg.predictor = "64-16"
  cfg.support_set.size = 3 * cfg.batch_size
  o = cfg.optimizer
  o.warmup_start_factor = WARMUP_START / (o.base_lr * cfg.batch_size / 256)
  o.weight_decay = 1e-3  # the recipe's 1e-6 hardly moves a 6-step test
  return cfg


def _mlp_last_bn(dims):
  """solo-learn's projector: [Linear + BN + ReLU] per hidden layer, then
  Linear + BN."""
  seq = recipe.mlp(dims, hidden_bias=True, last_bias=True)
  return torch.nn.Sequential(*seq, torch.nn.BatchNorm1d(dims[-1]))


class Official(torch.nn.Module):
  """solo-learn's NNCLR at the config's sizes."""

  def __init__(self, cfg):
    super().__init__()
    self.backbone, dims = recipe.trunk(cfg)
    self.projector = _mlp_last_bn(dims)
    self.predictor = recipe.mlp(
        [dims[-1]] + [int(d) for d in cfg.predictor.split("-")],
        hidden_bias=True, last_bias=True)
    self.register_buffer("queue", F.normalize(
        torch.randn(cfg.support_set.size, dims[-1]), dim=1))
    self.ptr = 0
    self.cfg = cfg

  def find_nn(self, z):
    with torch.no_grad():
      return self.queue[(z @ self.queue.T).max(dim=1)[1]]

  def worker_losses(self, x1, x2):
    z1, z2 = (self.projector(self.backbone(x)) for x in (x1, x2))
    p1, p2 = self.predictor(z1), self.predictor(z2)
    z1, z2 = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    nn1, nn2 = self.find_nn(z1), self.find_nn(z2)
    tau, n = self.cfg.loss.temperature, z1.shape[0]

    def loss(nn_local, p_all, rows):
      logits = F.normalize(nn_local, dim=-1) @ F.normalize(p_all, dim=-1).T
      return F.cross_entropy(logits / tau, torch.arange(rows.start,
                                                        rows.stop))
    out = []
    for w in range(W):
      rows = slice(w * n // W, (w + 1) * n // W)
      out.append(loss(nn1[rows], p2, rows) / 2 + loss(nn2[rows], p1, rows) / 2)
    with torch.no_grad():  # dequeue_and_enqueue(gather(z1)) after the step
      self.pending = z1.detach().clone()
    return out

  def enqueue(self):
    n = self.pending.shape[0]
    self.queue[self.ptr:self.ptr + n] = self.pending
    self.ptr = (self.ptr + n) % self.queue.shape[0]

  def state(self):
    return {**recipe.state_dict(self.backbone, "backbone"),
            **recipe.state_dict(self.projector, "projector"),
            **recipe.state_dict(self.predictor, "predictor"),
            "queue": self.queue.numpy(), "ptr": np.asarray(self.ptr)}


def lr_at(k, base, warmup, total, start):
  """LinearWarmupCosineAnnealingLR per step: start + k·(base − start)/
  (warmup − 1) during the warm-up, then the cosine to 0 over the rest."""
  if k < warmup:
    return start + k * (base - start) / (warmup - 1)
  return 0.5 * base * (1 + np.cos(np.pi * (k - warmup) / (total - warmup)))


def _ssljax_state(params, stats, method_state):
  out = recipe.joint_to_torch(params, stats)
  out.update(recipe.mlp_from_flax(params["predictor"], stats["predictor"],
                                  "predictor"))
  out["queue"] = np.asarray(method_state["queue"])
  out["ptr"] = np.asarray(method_state["ptr"])
  return out


def _load(official):
  load = recipe.load_joint(official.backbone, official.projector)

  def load_all(params, stats):
    params, stats = load(params, stats)
    params["predictor"], stats["predictor"] = recipe.mlp_to_flax(
        official.predictor)
    return params, stats
  return load_all


def test_nnclr_init_is_the_official_init():
  cfg, params, stats = recipe.init_variables("nnclr_resnet50_imagenet",
                                             "512-512-256")
  cfg.predictor = "512-256"
  torch.manual_seed(0)
  official = Official(cfg)
  got = recipe.joint_to_torch(params, stats)
  want = {k: v for k, v in official.state().items()
          if k.startswith(("backbone", "projector"))}
  problems = recipe.compare_init(got, want)
  assert not problems, "\n".join(problems)


def _max_errors(cfg):
  torch.manual_seed(0)
  official = Official(cfg).double()
  o = cfg.optimizer
  lars = recipe.LARC(official.parameters(), o.weight_decay, o.momentum,
                     o.trust_coefficient, clip=True, exclude_1d=True)
  base_lr = o.base_lr * cfg.batch_size / 256

  def step(k, views):
    recipe.ddp_average(official, official.worker_losses(*views))
    lars.step(lr_at(k, base_lr, 2, K, WARMUP_START))
    official.enqueue()

  queue = official.queue.numpy().copy()
  return recipe.step_errors(
      cfg, _load(official), step, lambda k: official.state(),
      _ssljax_state, num_workers=W, with_method_state=True,
      load_method_state=lambda s: {"queue": queue, "ptr": s["ptr"]})


def test_nnclr_step_equals_solo_learns_step():
  for k, (err, worst) in enumerate(_max_errors(_config())):
    assert err <= RTOL, (k, worst)
