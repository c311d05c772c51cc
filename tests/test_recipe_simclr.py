"""SimCLR's training step equals google-research/simclr's, in float64.

The official step (tf2/run.py, tf2/model.py, tf2/resnet.py,
tf2/objective.py, tf2/lars_optimizer.py, the paper's v1 head), transcribed
in PyTorch with tests/recipe.py: ResNet-50 v1.5 with TensorFlow's
VarianceScaling() init, the last BN of every block at 0 and the stem's
max-pool padded SAME (`recipe.ResNet(tf=True)`), BatchNorm with the biased
running variance (`recipe.TFBatchNorm`); the two views concatenated into
one batch (cross-replica BN over 2N); the head Dense (no bias, N(0, 0.01²))
+ BN + ReLU, Dense (no bias) + BN with a scale and no centre; NT-Xent on
the L2-normalized outputs, each worker's rows against the gathered batch
(a differentiable concatenation), the two directions summed, averaged
over the global batch; LARS with the rate inside the momentum (v = 0.9v +
lr·tr·(g + wd·w)), biases and BN excluded; warm-up from 0, cosine to 0.
Inputs in [0, 1]. ssljax runs configs/simclr_resnet50_imagenet.py shrunk,
on 4 devices against W = 4 workers.
"""

import numpy as np
import torch
import torch.nn.functional as F

from tests import helpers
from tests import recipe

W = 4
K = 6
RTOL = 1e-6


def _config():
  return recipe.shrink(helpers.load_config("simclr_resnet50_imagenet"),
                       projector="32-16", num_steps=K, warmup_steps=2)


class Official(torch.nn.Module):
  """The official model at the config's sizes."""

  def __init__(self, cfg):
    super().__init__()
    m = cfg.model
    self.backbone = recipe.resnet(m.name, width=m.get("width", 64),
                                  zero_init_residual=True, tf=True)
    dims = [self.backbone.out_dim] + [int(d) for d in
                                      cfg.projector.split("-")]
    self.fc1 = torch.nn.Linear(dims[0], dims[1], bias=False)
    self.bn1 = recipe.TFBatchNorm(dims[1])
    self.fc2 = torch.nn.Linear(dims[1], dims[2], bias=False)
    self.bn2 = recipe.TFBatchNorm(dims[2], center=False)
    for fc in (self.fc1, self.fc2):
      torch.nn.init.normal_(fc.weight, std=0.01)
    self.cfg = cfg

  def worker_losses(self, x1, x2):
    z = self.bn2(self.fc2(torch.relu(self.bn1(self.fc1(
        self.backbone(torch.cat([x1, x2])))))))
    h1, h2 = F.normalize(z, dim=1).chunk(2)
    n, tau = h1.shape[0], self.cfg.loss.temperature
    out = []
    for w in range(W):
      rows = slice(w * n // W, (w + 1) * n // W)
      a, b = h1[rows], h2[rows]
      mask = torch.zeros(a.shape[0], n, dtype=a.dtype)
      idx = torch.arange(rows.start, rows.stop)
      mask[torch.arange(a.shape[0]), idx] = 1e9
      ab, ba = a @ h2.T / tau, b @ h1.T / tau
      aa, bb = a @ h1.T / tau - mask, b @ h2.T / tau - mask
      loss_a = F.cross_entropy(torch.cat([ab, aa], 1), idx)
      loss_b = F.cross_entropy(torch.cat([ba, bb], 1), idx)
      out.append(loss_a + loss_b)
    return out

  def to_torch_keys(self):
    sd = recipe.state_dict(self.backbone, "backbone")
    for name in ("fc1", "bn1", "fc2", "bn2"):
      sd.update(recipe.state_dict(getattr(self, name), f"head.{name}"))
    return sd


def _ssljax_state(params, stats):
  out = recipe.encoder_to_torch(params["encoder"], stats["encoder"])
  p, s = params["projector"], stats["projector"]
  out["head.fc1.weight"] = np.asarray(p["fc1"]["kernel"]).T
  out["head.bn1.weight"] = np.asarray(p["bn1"]["scale"])
  out["head.bn1.bias"] = np.asarray(p["bn1"]["bias"])
  out["head.fc2.weight"] = np.asarray(p["fc2"]["kernel"]).T
  if "bn2" in p:
    out["head.bn2.weight"] = np.asarray(p["bn2"]["scale"])
  for i in (1, 2):
    out[f"head.bn{i}.running_mean"] = np.asarray(s[f"bn{i}"]["mean"])
    out[f"head.bn{i}.running_var"] = np.asarray(s[f"bn{i}"]["var"])
  return out


def _load(official):
  def load(params, stats):
    params["encoder"], stats["encoder"] = recipe.encoder_to_flax(
        official.backbone, params["encoder"], stats["encoder"])
    n = lambda t: t.detach().numpy()
    params["projector"] = {
        "fc1": {"kernel": n(official.fc1.weight).T},
        "bn1": {"scale": n(official.bn1.weight), "bias": n(official.bn1.bias)},
        "fc2": {"kernel": n(official.fc2.weight).T},
        "bn2": {"scale": n(official.bn2.weight)}}
    stats["projector"] = {f"bn{i}": {
        "mean": n(getattr(official, f"bn{i}").running_mean),
        "var": n(getattr(official, f"bn{i}").running_var)} for i in (1, 2)}
    return params, stats
  return load


def test_simclr_init_is_the_official_init():
  cfg, params, stats = recipe.init_variables("simclr_resnet50_imagenet",
                                             "512-128")
  torch.manual_seed(0)
  problems = recipe.compare_init(_ssljax_state(params, stats),
                                 Official(cfg).to_torch_keys())
  assert not problems, "\n".join(problems)


def _max_errors(cfg):
  torch.manual_seed(0)
  official = Official(cfg).double()
  o = cfg.optimizer
  lars = recipe.LARS(official.parameters(), weight_decay=o.weight_decay,
                     momentum=o.momentum, eta=o.trust_coefficient,
                     lr_in_momentum=True)
  base_lr = o.base_lr * cfg.batch_size / 256

  def step(k, views):
    for g in lars.param_groups:
      g["lr"] = recipe.warmup_cosine_lr(k, base_lr, 2, K, end=0.0)
    recipe.ddp_average(official, official.worker_losses(*views))
    lars.step()

  return recipe.step_errors(cfg, _load(official), step,
                            lambda k: official.to_torch_keys(),
                            _ssljax_state, num_workers=W)


def test_simclr_step_equals_the_official_step():
  for step, (err, worst) in enumerate(_max_errors(_config())):
    assert err <= RTOL, (step, worst)
