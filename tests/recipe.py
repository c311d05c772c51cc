"""PyTorch transcriptions of the official training steps (recipe parity).

What the official repositories do around the loss, in float64, for the
tests/test_recipe_*.py files: torchvision's ResNet with its initialization,
the official MLP heads, LARS as facebookresearch/vicreg and barlowtwins
write it, their warm-up + cosine schedule, and the multi-GPU semantics of
one DDP step simulated with W workers in one process:

  - DDP averages the W workers' gradients: `ddp_average`, (1/W) Σ_w of the
    gradient of worker w's loss;
  - a gather whose backward all-reduces the gradients (VICReg's
    FullGatherLayer) is a plain concatenation inside one autograd graph;
  - `torch.distributed.all_reduce` on a tensor that requires grad is not
    differentiated: worker w's loss sees the sum, its backward only its own
    part (`nondiff_all_reduce`);
  - SyncBatchNorm over all W workers is BatchNorm over the global batch.

Transcribed from the official code, not copied; each function names what it
follows.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats as scipy_stats
import torch
from torch import nn

from ssljax import methods
from ssljax import train_state
from ssljax import train_step
from ssljax import weights
from ssljax.data import pipeline
from tests import helpers



# ----------------------------------------------------------------------------
# Networks: torchvision's layout and initialization.
# ----------------------------------------------------------------------------
def _conv(cin, cout, k, stride):
  return nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)


class TFBatchNorm(nn.Module):
  """TensorFlow's (and Haiku's) BatchNorm in PyTorch: the same training-
  mode output as nn.BatchNorm, but the running variance is updated with
  the biased batch variance (decay 0.9); `scale` / `center` as Keras'."""

  def __init__(self, dim, scale=True, center=True):
    super().__init__()
    self.weight = nn.Parameter(torch.ones(dim)) if scale else None
    self.bias = nn.Parameter(torch.zeros(dim)) if center else None
    self.register_buffer("running_mean", torch.zeros(dim))
    self.register_buffer("running_var", torch.ones(dim))

  def forward(self, x):
    axes = [0] + list(range(2, x.ndim))
    shape = [1, -1] + [1] * (x.ndim - 2)
    mean, var = x.mean(axes), x.var(axes, unbiased=False)
    with torch.no_grad():
      self.running_mean.mul_(0.9).add_(0.1 * mean)
      self.running_var.mul_(0.9).add_(0.1 * var)
    y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + 1e-5)
    if self.weight is not None:
      y = y * self.weight.view(shape)
    if self.bias is not None:
      y = y + self.bias.view(shape)
    return y


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, cin, planes, stride, bn=nn.BatchNorm2d):
    super().__init__()
    self.conv1, self.bn1 = _conv(cin, planes, 3, stride), bn(planes)
    self.conv2, self.bn2 = _conv(planes, planes, 3, 1), bn(planes)
    self.downsample = _downsample(cin, planes, stride, bn)

  def forward(self, x):
    y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
    return torch.relu(y + (self.downsample(x) if self.downsample else x))


class Bottleneck(nn.Module):
  expansion = 4

  def __init__(self, cin, planes, stride, bn=nn.BatchNorm2d):
    super().__init__()
    self.conv1, self.bn1 = _conv(cin, planes, 1, 1), bn(planes)
    self.conv2, self.bn2 = _conv(planes, planes, 3, stride), bn(planes)
    self.conv3 = _conv(planes, planes * 4, 1, 1)
    self.bn3 = bn(planes * 4)
    self.downsample = _downsample(cin, planes * 4, stride, bn)

  def forward(self, x):
    y = torch.relu(self.bn1(self.conv1(x)))
    y = self.bn3(self.conv3(torch.relu(self.bn2(self.conv2(y)))))
    return torch.relu(y + (self.downsample(x) if self.downsample else x))


def _downsample(cin, cout, stride, bn):
  if stride == 1 and cin == cout:
    return None
  return nn.Sequential(_conv(cin, cout, 1, stride), bn(cout))


class ResNet(nn.Module):
  """torchvision.models.ResNet without `fc` (the official SSL codes set it to
  Identity), with a `width` for the first stage (torchvision: 64) and the
  CIFAR stem as an option. Initialization as torchvision's constructor:
  convolutions kaiming_normal_(mode="fan_out", nonlinearity="relu"), BN
  weight 1 and bias 0, and with zero_init_residual the last BN weight of
  every residual branch 0. The TensorFlow variant (tf=True, SimCLR's
  tf2/resnet.py): VarianceScaling() convolutions (truncated normal at ±2σ,
  variance 1 / fan_in after truncation), `TFBatchNorm`, and the stem's
  max-pool padded as SAME (0 before, 1 after on an even map; zero padding
  is exact after the ReLU)."""

  def __init__(self, stage_sizes, bottleneck, width=64, stem="imagenet",
               zero_init_residual=False, tf=False):
    super().__init__()
    block = Bottleneck if bottleneck else BasicBlock
    bn = TFBatchNorm if tf else nn.BatchNorm2d
    if stem == "imagenet":
      self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
      self.maxpool = (nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)),
                                    nn.MaxPool2d(3, 2)) if tf
                      else nn.MaxPool2d(3, 2, 1))
    else:
      self.conv1 = _conv(3, width, 3, 1)
      self.maxpool = nn.Identity()
    self.bn1 = bn(width)
    cin = width
    for i, n in enumerate(stage_sizes):
      layers = []
      for j in range(n):
        layers.append(block(cin, width * 2**i, 2 if i > 0 and j == 0 else 1,
                            bn))
        cin = width * 2**i * block.expansion
      setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
    self.num_layers = len(stage_sizes)
    self.out_dim = cin
    for m in self.modules():
      if isinstance(m, nn.Conv2d) and tf:
        fan_in = m.weight[0].numel()
        std = (1.0 / fan_in)**0.5 / 0.87962566103423978
        nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
      elif isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
      elif isinstance(m, (nn.BatchNorm2d, TFBatchNorm)):
        nn.init.constant_(m.weight, 1)
        nn.init.constant_(m.bias, 0)
    if zero_init_residual:
      for m in self.modules():
        if isinstance(m, Bottleneck):
          nn.init.constant_(m.bn3.weight, 0)
        elif isinstance(m, BasicBlock):
          nn.init.constant_(m.bn2.weight, 0)

  def forward(self, x):
    x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
    for i in range(self.num_layers):
      x = getattr(self, f"layer{i + 1}")(x)
    return x.mean(dim=(2, 3))


def resnet(name, **kw):
  sizes = {"resnet18": ((2, 2, 2, 2), False), "resnet34": ((3, 4, 6, 3),
                                                           False),
           "resnet50": ((3, 4, 6, 3), True)}[name]
  return ResNet(*sizes, **kw)


def mlp(dims, hidden_bias=True, last_bias=False, bn=nn.BatchNorm1d):
  """The official projector: [Linear + BatchNorm1d + ReLU] per hidden layer,
  then Linear (PyTorch's default Linear init)."""
  layers = []
  for i in range(len(dims) - 2):
    layers += [nn.Linear(dims[i], dims[i + 1], bias=hidden_bias),
               bn(dims[i + 1]), nn.ReLU()]
  layers.append(nn.Linear(dims[-2], dims[-1], bias=last_bias))
  return nn.Sequential(*layers)


# ----------------------------------------------------------------------------
# Optimizer and schedule: facebookresearch/vicreg main_vicreg.py and
# facebookresearch/barlowtwins main.py (the same LARS in both).
# ----------------------------------------------------------------------------
class LARS(torch.optim.Optimizer):
  """The official LARS: weight decay then the trust ratio η‖p‖/‖g‖ (both
  skipped for 1-D parameters when the filters are on), then momentum on the
  adapted update, then p -= lr · momentum buffer: the learning rate of the
  current step multiplies the whole buffer. lr_in_momentum: SimCLR's
  (tf2/lars_optimizer.py) order instead, the rate inside the buffer."""

  def __init__(self, params, lr=0.0, weight_decay=0.0, momentum=0.9,
               eta=0.001, exclude_1d=True, lr_in_momentum=False):
    super().__init__(params, dict(lr=lr, weight_decay=weight_decay,
                                  momentum=momentum, eta=eta,
                                  exclude_1d=exclude_1d,
                                  lr_in_momentum=lr_in_momentum))

  @torch.no_grad()
  def step(self):
    for g in self.param_groups:
      for p in g["params"]:
        dp = p.grad
        if dp is None:
          continue
        adapt = not (g["exclude_1d"] and p.ndim == 1)
        if adapt:
          dp = dp.add(p, alpha=g["weight_decay"])
          param_norm, update_norm = torch.norm(p), torch.norm(dp)
          one = torch.ones_like(param_norm)
          q = torch.where(param_norm > 0.0, torch.where(
              update_norm > 0, g["eta"] * param_norm / update_norm, one), one)
          dp = dp.mul(q)
        state = self.state[p]
        if "mu" not in state:
          state["mu"] = torch.zeros_like(p)
        mu = state["mu"]
        if g["lr_in_momentum"]:  # SimCLR's TF LARS: v = m·v + lr·u; p -= v
          mu.mul_(g["momentum"]).add_(dp, alpha=g["lr"])
          p.sub_(mu)
        else:
          mu.mul_(g["momentum"]).add_(dp)
          p.add_(mu, alpha=-g["lr"])


class LARC:
  """apex.parallel.LARC(SGD(momentum, weight_decay), trust, clip) as
  SwAV uses it (clip False, every parameter), and solo-learn's LARS
  (solo/utils/lars.py: clip_lr, exclude_bias_n_norm): where ‖p‖ and ‖g‖
  are > 0, g ← (g + wd·p)·r, r = trust·‖p‖/(‖g‖ + wd·‖p‖ + 1e-8), capped
  at 1 after division by the rate with `clip`; 1-D parameters untouched
  with `exclude_1d`; then SGD momentum (the first buffer is the update)
  and p -= lr · buffer."""

  def __init__(self, params, weight_decay, momentum, trust, clip=False,
               exclude_1d=False):
    self.params, self.wd, self.m, self.trust = list(params), weight_decay, \
        momentum, trust
    self.clip, self.exclude_1d, self.buf = clip, exclude_1d, {}

  @torch.no_grad()
  def step(self, lr):
    for p in self.params:
      if p.grad is None:
        continue
      g = p.grad
      pn, gn = torch.norm(p), torch.norm(g)
      if pn != 0 and gn != 0 and not (self.exclude_1d and p.ndim == 1):
        r = self.trust * pn / (gn + pn * self.wd + 1e-8)
        if self.clip:
          r = min(r / lr, 1)
        g = (g + self.wd * p) * r
      if p not in self.buf:
        self.buf[p] = g.clone()
      else:
        self.buf[p].mul_(self.m).add_(g)
      p.sub_(lr * self.buf[p])


def warmup_cosine_lr(step, base_lr, warmup_steps, max_steps, end=0.001):
  """adjust_learning_rate of the official VICReg / Barlow Twins: linear from
  0 over the warm-up, then cosine from base_lr to end · base_lr."""
  if step < warmup_steps:
    return base_lr * step / warmup_steps
  q = 0.5 * (1 + math.cos(math.pi * (step - warmup_steps)
                          / (max_steps - warmup_steps)))
  return base_lr * q + end * base_lr * (1 - q)


# ----------------------------------------------------------------------------
# One DDP step, W workers simulated in one process.
# ----------------------------------------------------------------------------
def shards(x, num_workers):
  """The W per-worker slices of a global batch (DistributedSampler order:
  worker w holds rows w·n/W to (w+1)·n/W)."""
  return torch.chunk(x, num_workers, dim=0)


def nondiff_all_reduce(local, total):
  """Worker-side value of `all_reduce(local)`: the sum over workers, with
  gradient only through the worker's own `local` (the collective is not
  differentiated)."""
  return local + (total - local).detach()


def ddp_average(model, worker_losses):
  """Sets .grad of the model's parameters to DDP's: the mean over workers
  of the gradients of their losses."""
  model.zero_grad(set_to_none=True)
  (sum(worker_losses) / len(worker_losses)).backward()


# ----------------------------------------------------------------------------
# Weights across: torch state dicts <-> ssljax variables.
# ----------------------------------------------------------------------------
def _np(t):
  return t.detach().cpu().numpy()


def mlp_to_flax(seq):
  """(params, batch_stats) of models.MLP from an `mlp` Sequential."""
  params, stats = {}, {}
  linears = [m for m in seq if isinstance(m, nn.Linear)]
  norms = [m for m in seq if isinstance(m, (nn.BatchNorm1d, TFBatchNorm))]
  for i, lin in enumerate(linears, 1):
    params[f"fc{i}"] = {"kernel": _np(lin.weight).T}
    if lin.bias is not None:
      params[f"fc{i}"]["bias"] = _np(lin.bias)
  for i, bn in enumerate(norms, 1):
    if bn.weight is not None:
      params[f"bn{i}"] = {"scale": _np(bn.weight), "bias": _np(bn.bias)}
    stats[f"bn{i}"] = {"mean": _np(bn.running_mean),
                       "var": _np(bn.running_var)}
  return params, stats


def mlp_from_flax(params, stats, prefix):
  """{torch key: array} of an `mlp` Sequential named `prefix` from
  models.MLP variables (for comparisons; Sequential indices as `mlp`)."""
  out, idx = {}, 0
  n = len([k for k in params if k.startswith("fc")])
  for i in range(1, n + 1):
    out[f"{prefix}.{idx}.weight"] = np.asarray(params[f"fc{i}"]["kernel"]).T
    if "bias" in params[f"fc{i}"]:
      out[f"{prefix}.{idx}.bias"] = np.asarray(params[f"fc{i}"]["bias"])
    idx += 1
    if f"bn{i}" in stats:
      if f"bn{i}" in params:
        out[f"{prefix}.{idx}.weight"] = np.asarray(params[f"bn{i}"]["scale"])
        out[f"{prefix}.{idx}.bias"] = np.asarray(params[f"bn{i}"]["bias"])
      out[f"{prefix}.{idx}.running_mean"] = np.asarray(stats[f"bn{i}"]["mean"])
      out[f"{prefix}.{idx}.running_var"] = np.asarray(stats[f"bn{i}"]["var"])
      idx += 2  # BatchNorm1d, ReLU
  return out


def state_dict(module, prefix):
  """{prefix.key: array} of a module, without num_batches_tracked."""
  return {f"{prefix}.{k}": _np(v) for k, v in module.state_dict().items()
          if not k.endswith("num_batches_tracked")}


def encoder_to_torch(params, stats, prefix="backbone"):
  """{prefix.torch key: array} of ssljax ResNet variables."""
  sd = weights.resnet_to_torch(params, stats, num_classes=0)
  return {f"{prefix}.{k}": np.asarray(v) for k, v in sd.items()
          if not k.endswith("num_batches_tracked")}


def encoder_to_flax(net, params_like, stats_like):
  """(params, batch_stats) of ssljax's ResNet from a torch ResNet."""
  sd = {k: _np(v) for k, v in net.state_dict().items()}
  return weights.resnet_from_torch(sd, params_like, stats_like)


def max_relative_errors(got, want):
  """{key: max |got − want| / max(max |want|, 1e-9)} over the keys of
  `want` (a tensor that is exactly 0 on both sides counts 0); KeyError-
  free: keys missing on one side are reported as inf. The floor: a tensor
  that stays within 1e-9 of 0 is one whose gradient is mathematically 0
  and in float64 rounding noise (~1e-17: NNCLR's last projector BN bias,
  whose shift the predictor's BN removes); it is compared absolutely."""
  out = {}
  for k, w in want.items():
    if k not in got or np.shape(got[k]) != np.shape(w):
      out[k] = math.inf
      continue
    scale = float(np.max(np.abs(w))) if np.size(w) else 0.0
    err = float(np.max(np.abs(np.asarray(got[k], np.float64) - w))) if (
        np.size(w)) else 0.0
    out[k] = 0.0 if err == 0.0 else err / max(scale, 1e-9)
  for k in got:
    if k not in want:
      out[k] = math.inf
  return out


# ----------------------------------------------------------------------------
# The ssljax side: the recipe's config, shrunk, stepped on the same batches.
# ----------------------------------------------------------------------------
def shrink(cfg, *, model_width=4, projector=None, image_size=32,
           batch_size=16, num_steps=6, warmup_steps=2):
  """The paper-recipe config `cfg` at test size, in float64, recipe kept:
  narrower trunk and heads, small images and batch, a schedule of
  `num_steps` with `warmup_steps` of warm-up (one step per epoch), no
  augmentation (compared on its own), no evaluation."""
  cfg = cfg.copy_and_resolve_references()
  cfg.model.width = model_width
  cfg.model.dtype = "float64"
  if projector is not None:
    cfg.projector = projector
  cfg.data.image_size = image_size
  cfg.augment = "none"
  cfg.batch_size = batch_size
  cfg.num_steps = num_steps
  cfg.optimizer.warmup_epochs = float(warmup_steps)
  cfg.summary_eval = False
  cfg.eval_every = 0
  return cfg


def images(rng, batch_size, num_views, size):
  """uint8 [n, V, S, S, 3] of random pixels (the pre-augmented crops)."""
  return rng.integers(0, 256, (batch_size, num_views, size, size, 3),
                      dtype=np.uint8)


def views_torch(batch_nvhwc, mean, std):
  """The views ssljax's "none" augmentation gives, for torch: float64
  NCHW, x / 255 normalized by the config's mean and std."""
  x = batch_nvhwc.astype(np.float64) / 255.0
  x = (x - np.asarray(mean)) / np.asarray(std)
  return [torch.from_numpy(np.ascontiguousarray(
      x[:, v].transpose(0, 3, 1, 2))) for v in range(x.shape[1])]


def compare_init(got, want, min_size=64, p_min=1e-6):
  """Problems with an initialization against the official one, both
  {torch key: array}: keys or shapes that differ, a tensor constant on one
  side (all 0, all 1) and not the same on the other, and a two-sample
  Kolmogorov–Smirnov test of the values of every tensor with ≥ min_size
  entries (p < p_min: another distribution or scale)."""
  problems = []
  for k in sorted(set(got) | set(want)):
    if k not in got or k not in want:
      problems.append(f"{k}: only in {'ssljax' if k in got else 'official'}")
      continue
    a, b = np.asarray(got[k], np.float64), np.asarray(want[k], np.float64)
    if a.shape != b.shape:
      problems.append(f"{k}: shape {a.shape} vs official {b.shape}")
      continue
    for c in (0.0, 1.0):
      if np.all(a == c) != np.all(b == c):
        problems.append(f"{k}: {'all' if np.all(a == c) else 'not all'} {c}"
                        f" (official: {'all' if np.all(b == c) else 'not'})")
    if a.size >= min_size and np.std(b) > 0:
      p = scipy_stats.ks_2samp(a.ravel(), b.ravel()).pvalue
      if p < p_min:
        problems.append(f"{k}: values differ (KS p = {p:.1e}; std "
                        f"{np.std(a):.4g} vs official {np.std(b):.4g})")
  return problems


def ssljax_steps(cfg, load, batches, num_workers, num_classes=10,
                 with_method_state=False, load_method_state=None):
  """Yields (params, batch_stats) on the host after each of ssljax's steps
  on `batches` ({"global": uint8 [n, V, S, S, 3], "label": int [n]}), on
  `num_workers` devices, from the variables `load(params, batch_stats)`
  returns (given the fresh init's, float64 wanted); the method's state
  (an EMA target, ...) starts from those variables, and with
  `with_method_state` is yielded third; `load_method_state(state)`, when
  given, replaces it (the official's queue, ...). Call inside
  jax.enable_x64(True)."""
  mesh = train_state.make_mesh(jax.devices()[:num_workers])
  s = train_state.setup(cfg, cfg.batch_size, num_classes, mesh=mesh)
  state = train_state.init_state(s, 0)
  params, stats = load(dict(state.params), dict(state.batch_stats))
  # Everything in the fresh state's shardings: an eagerly built leaf (the
  # optimizer's step count) carries none, and the second step would
  # compile again.
  shardings = lambda like: jax.tree.map(lambda x: x.sharding, like)
  put = lambda t, like: jax.device_put(
      jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), t), shardings(like))
  params, stats = put(params, state.params), put(stats, state.batch_stats)
  # Copies: the step donates its state, and an EMA target that shares the
  # online network's buffers would be donated twice.
  method_state = jax.tree.map(jnp.copy, s.objective.init_state(
      {"params": methods.split_probe(params)[0], "batch_stats": stats}))
  if load_method_state is not None:
    # Floats in float64: a state the objective initializes on its own (an
    # independently drawn target) comes in the params' float32.
    wide = lambda d: jnp.float64 if jnp.issubdtype(d, jnp.floating) else d
    method_state = jax.tree.map(
        lambda a, like: jnp.asarray(a, wide(like.dtype)),
        load_method_state(method_state), method_state)
  method_state = jax.device_put(method_state, shardings(state.method_state))
  state = state.replace(
      params=params, batch_stats=stats,
      opt_state=jax.device_put(s.tx.init(params),
                               shardings(state.opt_state)),
      method_state=method_state)
  step_fn = train_step.jit_train_step(s)
  for batch in batches:
    state, _ = step_fn(state, pipeline.to_global(batch, mesh))
    out = jax.device_get((state.params, state.batch_stats))
    yield out + (jax.device_get(state.method_state),) if (
        with_method_state) else out


def random_batches(cfg, num_steps, num_views=2, num_classes=10, seed=0):
  """The pre-augmented batches both sides train on (with the config's
  local crops, data.num_local of data.local_size px, when it has some)."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(num_steps):
    batch = {"global": images(rng, cfg.batch_size, num_views,
                              cfg.data.image_size),
             "label": rng.integers(0, num_classes, cfg.batch_size).astype(
                 np.int32)}
    if cfg.data.get("num_local", 0):
      batch["local"] = images(rng, cfg.batch_size, cfg.data.num_local,
                              cfg.data.local_size)
    out.append(batch)
  return out


def batch_views(batch, cfg):
  """`views_torch` of a batch's global then local crops."""
  return [v for key in ("global", "local") if key in batch
          for v in views_torch(batch[key], cfg.data.mean, cfg.data.std)]


def step_errors(cfg, load, official_step, official_state,
                ssljax_state=None, num_workers=4, with_method_state=False,
                load_method_state=None):
  """Per step of cfg.num_steps, (max relative error, worst tensors) between
  ssljax's step on `num_workers` devices, started from `load`
  (ssljax_steps), and the official one, `official_step(k, views)` on the
  same batches (`batch_views`); after each step `official_state(k)` is
  compared with `ssljax_state(*what ssljax_steps yields)` (default: the
  joint network's `joint_to_torch`)."""
  ssljax_state = ssljax_state or joint_to_torch
  batches = random_batches(cfg, cfg.num_steps)
  out = []
  with jax.enable_x64(True):
    steps = ssljax_steps(cfg, load, batches, num_workers,
                         with_method_state=with_method_state,
                         load_method_state=load_method_state)
    for k, (batch, got) in enumerate(zip(batches, steps)):
      official_step(k, batch_views(batch, cfg))
      errors = max_relative_errors(ssljax_state(*got), official_state(k))
      out.append((max(errors.values()), worst(errors)))
  return out


def init_variables(config_name, projector):
  """(cfg, params, batch_stats) on the host: the paper-recipe config's
  fresh initialization in float32, the projector narrowed to `projector`
  (the same layers as the recipe's, less memory)."""
  cfg = helpers.load_config(config_name)
  cfg.model.dtype = "float32"
  cfg.projector = projector
  _, init = methods.init_fn(cfg, 10)
  v = jax.device_get(jax.jit(init)())
  return cfg, v["params"], v["batch_stats"]


def joint_to_torch(params, stats):
  """{torch key: array} of a joint-embedding network's encoder
  ("backbone.*") and projector ("projector.*")."""
  out = encoder_to_torch(params["encoder"], stats["encoder"])
  out.update(mlp_from_flax(params["projector"], stats["projector"],
                           "projector"))
  return out


def load_joint(backbone, projector):
  """`load` for ssljax_steps: the official backbone and projector's weights
  in place of ssljax's encoder and projector."""
  def load(params, stats):
    params["encoder"], stats["encoder"] = encoder_to_flax(
        backbone, params["encoder"], stats["encoder"])
    params["projector"], stats["projector"] = mlp_to_flax(projector)
    return params, stats
  return load


def worst(errors, k=5):
  return sorted(errors.items(), key=lambda kv: -kv[1])[:k]


def trunk(cfg, **kw):
  """(the config's torch ResNet, [its width] + the projector's widths)."""
  net = resnet(cfg.model.name, width=cfg.model.get("width", 64), **kw)
  return net, [net.out_dim] + [int(d) for d in cfg.projector.split("-")]


def official_joint(cfg, hidden_bias, last_bias):
  """(backbone, projector) as the official joint-embedding codes build them
  at the config's sizes: torchvision's ResNet with zero_init_residual (as
  VICReg's, Barlow Twins' and MVEB's), then `mlp` over cfg.projector."""
  m = cfg.model
  backbone = resnet(m.name, width=m.get("width", 64), zero_init_residual=True)
  dims = [backbone.out_dim] + [int(d) for d in cfg.projector.split("-")]
  return backbone, mlp(dims, hidden_bias=hidden_bias, last_bias=last_bias)
