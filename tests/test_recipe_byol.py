"""BYOL's training step equals deepmind-research/byol's, in float64.

The official step (byol/byol_experiment.py, byol/utils/networks.py,
optimizers.py, schedules.py, and Haiku's ResNet50, BlockV1 and defaults it
relies on; JAX/Haiku), transcribed in PyTorch with tests/recipe.py:
ResNet v1.5 whose every convolution and the stem's max-pool pad as SAME
(0 before, 1 after a stride-2 window on an even map), Haiku's init
(TruncatedNormal(1/√fan_in) at ±2σ, not variance-corrected, for
convolutions and Linear; biases 0; the last BN scale of each block 0),
BatchNorm with the biased batch variance over the global batch (cross-
replica) and each view in its own pass; projector and predictor Linear +
BN + ReLU, Linear without bias; the target (encoder, projector and its
unused predictor) in train mode with its own BN statistics; the loss
2 − 2cos summed over both directions, averaged over each worker's batch,
gradients averaged over workers (pmean); LARS (weight decay then the trust
ratio η‖p‖/‖g + wd·p‖ on weights only, momentum, the rate after it);
warm-up from 0 then cosine to 0; then the target's parameters moved
towards the updated online ones with τ(k) = 1 − (1 − base)(1 + cos(πk/K))/2.
The official target starts from its own init (`ema.independent_init`,
tested by `test_byol_target_starts_from_its_own_init`; the step test
loads the same target weights on both sides). Not transcribed: Haiku's BN
running averages are zero-debiased (evaluation only); the statistics
compared are the plain EMA ssljax keeps. The official online classifier (detached features) does
not reach these weights. ssljax runs configs/byol_resnet50_imagenet.py
shrunk, on 4 devices against W = 4 workers; online and target parameters
and BN statistics are compared after every step (largest error 5e-8).
Flipped, each fails: conv_padding "torch" (step 0: 0.82), the stem's
max-pool padded as torch's (step 0: 0.56), optax.lars' order (step 1:
0.96), the EMA with the next step's momentum (step 0: 1.4e-2); Flax's
default init instead of Haiku's fails the init test (KS p < 1e-10).
"""

import math

import jax
import numpy as np
import torch
import torch.nn.functional as F

from ssljax import train_state
from tests import helpers
from tests import recipe

W = 4
K = 6
RTOL = 1e-6


def _config():
  cfg = recipe.shrink(helpers.load_config("byol_resnet50_imagenet"),
                      projector="32-16", num_steps=K, warmup_steps=2)
  cfg.predictor = "32-16"
  cfg.ema.base = 0.9  # a target that moves within 6 steps
  return cfg


def _same_pad(module, inputs):
  """TensorFlow's / Haiku's SAME padding, computed from the input size."""
  x, = inputs
  pads = []
  for n, k, s in zip(x.shape[:1:-1], module.kernel_size[::-1],
                     module.stride[::-1]):
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    pads += [total // 2, total - total // 2]
  return (F.pad(x, pads),)


def haiku_init(module):
  """Haiku's default initializers on every Conv2d and Linear."""
  for m in module.modules():
    if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
      std = 1.0 / m.weight[0].numel()**0.5
      torch.nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
      if m.bias is not None:
        torch.nn.init.zeros_(m.bias)


def haiku_resnet(cfg):
  """Haiku's ResNet50 trunk: recipe.ResNet's TF variant with every
  convolution padded SAME and Haiku's init."""
  m = cfg.model
  net = recipe.resnet(m.name, width=m.get("width", 64),
                      zero_init_residual=True, tf=True)
  for conv in net.modules():
    if isinstance(conv, torch.nn.Conv2d):
      conv.padding = (0, 0)
      conv.register_forward_pre_hook(_same_pad)
  haiku_init(net)  # convolutions only: BN keeps 1 / 0 and the zero bn3
  return net


class Network(torch.nn.Module):
  """One of BYOL's networks (online or target): encoder, projector,
  predictor."""

  def __init__(self, cfg):
    super().__init__()
    self.backbone = haiku_resnet(cfg)
    dims = [self.backbone.out_dim] + [int(d) for d in
                                      cfg.projector.split("-")]
    self.projector = recipe.mlp(dims, hidden_bias=True, last_bias=False,
                                bn=recipe.TFBatchNorm)
    self.predictor = recipe.mlp(
        [dims[-1]] + [int(d) for d in cfg.predictor.split("-")],
        hidden_bias=True, last_bias=False, bn=recipe.TFBatchNorm)
    haiku_init(self.projector)
    haiku_init(self.predictor)

  def forward(self, x):
    z = self.projector(self.backbone(x))
    return z, self.predictor(z)

  def state(self, prefix=""):
    return {f"{prefix}{k}": v for name in ("backbone", "projector",
                                           "predictor")
            for k, v in recipe.state_dict(getattr(self, name),
                                          name).items()}


def regression(p, t):
  return (F.normalize(p, dim=-1) - F.normalize(t, dim=-1)).pow(2).sum(-1)


def worker_losses(online, target, views):
  (_, p1), (_, p2) = online(views[0]), online(views[1])
  with torch.no_grad():
    (t1, _), (t2, _) = target(views[0]), target(views[1])
  loss = regression(p1, t2) + regression(p2, t1)
  return [part.mean() for part in recipe.shards(loss, W)]


def _load_into(net, params, stats):
  params["encoder"], stats["encoder"] = recipe.encoder_to_flax(
      net.backbone, params["encoder"], stats["encoder"])
  for name in ("projector", "predictor"):
    params[name], stats[name] = recipe.mlp_to_flax(getattr(net, name))
  return params, stats


def _torch_state(params, stats, prefix=""):
  out = recipe.joint_to_torch(params, stats)
  out.update(recipe.mlp_from_flax(params["predictor"], stats["predictor"],
                                  "predictor"))
  return {prefix + k: v for k, v in out.items()}


def _ssljax_state(params, stats, method_state):
  target = method_state["ema"]
  return {**_torch_state(params, stats),
          **_torch_state(target["params"], target["batch_stats"], "target.")}


def test_byol_init_is_the_official_init():
  cfg, params, stats = recipe.init_variables("byol_resnet50_imagenet",
                                             "512-256")
  torch.manual_seed(0)
  got = _torch_state(params, stats)
  problems = recipe.compare_init(got, Network(cfg).state())
  assert not problems, "\n".join(problems)


def test_byol_target_starts_from_its_own_init():
  """byol_experiment.py inits the target from its own key: the same
  distribution, other values (ema.independent_init)."""
  cfg = recipe.shrink(helpers.load_config("byol_resnet50_imagenet"),
                      projector="64-32", model_width=16)
  cfg.predictor = "64-32"
  cfg.model.dtype = "float32"
  s = train_state.setup(cfg, cfg.batch_size, 10)
  state = jax.device_get(train_state.init_state(s, 0))
  online = _torch_state(state.params, state.batch_stats)
  target = _torch_state(state.method_state["ema"]["params"],
                        state.method_state["ema"]["batch_stats"])
  problems = recipe.compare_init(target, online)
  assert not problems, "\n".join(problems)
  w = "backbone.layer1.0.conv2.weight"
  assert not np.allclose(target[w], online[w])
  cfg.ema.independent_init = False
  s = train_state.setup(cfg, cfg.batch_size, 10)
  state = jax.device_get(train_state.init_state(s, 0))
  np.testing.assert_array_equal(
      state.method_state["ema"]["params"]["encoder"]["stem_conv"]["kernel"],
      state.params["encoder"]["stem_conv"]["kernel"])


def _max_errors(cfg):
  torch.manual_seed(0)
  online, target = Network(cfg).double(), Network(cfg).double()
  o = cfg.optimizer
  lars = recipe.LARS(online.parameters(), weight_decay=o.weight_decay,
                     momentum=o.momentum, eta=o.trust_coefficient)
  base_lr = o.base_lr * cfg.batch_size / 256

  def step(k, views):
    for g in lars.param_groups:
      g["lr"] = recipe.warmup_cosine_lr(k, base_lr, 2, K, end=0.0)
    recipe.ddp_average(online, worker_losses(online, target, views))
    lars.step()
    tau = 1 - (1 - cfg.ema.base) * 0.5 * (1 + math.cos(math.pi * k / K))
    with torch.no_grad():
      for t, p in zip(target.parameters(), online.parameters()):
        t.add_((1 - tau) * (p - t))

  def load(params, stats):
    return _load_into(online, params, stats)

  def load_target(state):
    params, stats = _load_into(target, dict(state["ema"]["params"]),
                               dict(state["ema"]["batch_stats"]))
    return dict(state, ema={"params": params, "batch_stats": stats})

  return recipe.step_errors(
      cfg, load, step,
      lambda k: {**online.state(), **target.state("target.")},
      _ssljax_state, num_workers=W, with_method_state=True,
      load_method_state=load_target)


def test_byol_step_equals_the_official_step():
  for k, (err, worst) in enumerate(_max_errors(_config())):
    assert err <= RTOL, (k, worst)


def test_byol_same_padding_is_haikus():
  # A 3×3 stride-2 window on an 8-px map: SAME pads (0, 1); torch's 1 is
  # another grid, which the step test's flip (conv_padding="torch") shows.
  conv = torch.nn.Conv2d(1, 1, 3, 2, bias=False)
  x = torch.zeros(1, 1, 8, 8)
  assert _same_pad(conv, (x,))[0].shape[-2:] == (9, 9)
  np.testing.assert_array_equal(
      _same_pad(conv, (torch.ones(1, 1, 8, 8),))[0][0, 0, -1].numpy(),
      np.zeros(9))
