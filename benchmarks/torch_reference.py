"""PyTorch reference of ssljax's VICReg train step, for
benchmarks/train_step.py --torch. Not part of the package; needs torch.

Layer for layer as ssljax, with the same module names (tests copy weights
across): ResNet v1.5 (ssljax.models.resnet; CIFAR stem: 3×3 stride-1 conv, no
max-pool; BN eps 1e-5, momentum 0.1 = Flax 0.9), pre-norm ViT
(ssljax.models.vit; LayerNorm eps 1e-6, exact GELU, class token + its own
position embedding, CLS after the final LayerNorm), the VICReg projector
(Linear+BN+ReLU, last Linear without bias), views encoded one at a time
(per-view BN statistics), ssljax.losses.vicreg (with its n×n-Gram shortcut),
the online linear probe on the detached view-1 representation, and AdamW as
ssljax.optim (decay on ≥2-D parameters; the probe: its own lr, no decay) at
the peak learning rate (the schedule changes no timing). Float32 only.
"""

import torch
from torch import nn
import torch.nn.functional as F

ENCODERS = {
    "resnet18": dict(stage_sizes=(2, 2, 2, 2), bottleneck=False),
    "resnet34": dict(stage_sizes=(3, 4, 6, 3), bottleneck=False),
    "resnet50": dict(stage_sizes=(3, 4, 6, 3), bottleneck=True),
    "vit_tiny": dict(width=192, depth=12, num_heads=3),
    "vit_small": dict(width=384, depth=12, num_heads=6),
    "vit_base": dict(width=768, depth=12, num_heads=12),
}


def _conv(cin, cout, k, stride):
  return nn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=False)


class Block(nn.Module):
  """Basic (3×3, 3×3) or bottleneck (1×1, 3×3, 1×1 ×4) block; the stride on
  the first 3×3; optional zero-init of the last BN scale."""

  def __init__(self, cin, features, stride, bottleneck, zero_init_residual):
    super().__init__()
    f, self.out = features, features * (4 if bottleneck else 1)
    layers = ([(cin, f, 1, 1), (f, f, 3, stride), (f, self.out, 1, 1)]
              if bottleneck else [(cin, f, 3, stride), (f, self.out, 3, 1)])
    self.depth = len(layers)
    for i, (a, b, k, s) in enumerate(layers):
      self.add_module(f"conv{i + 1}", _conv(a, b, k, s))
      self.add_module(f"bn{i + 1}", nn.BatchNorm2d(b))
    if zero_init_residual:
      nn.init.zeros_(getattr(self, f"bn{self.depth}").weight)
    self.down = cin != self.out or stride != 1
    if self.down:
      self.down_conv = _conv(cin, self.out, 1, stride)
      self.down_bn = nn.BatchNorm2d(self.out)

  def forward(self, x):
    y = x
    for i in range(1, self.depth + 1):
      y = getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(y))
      y = F.relu(y, inplace=True) if i < self.depth else y
    if self.down:
      x = self.down_bn(self.down_conv(x))
    return F.relu(x + y, inplace=True)


class ResNet(nn.Module):
  """[n, 3, H, W] -> representation [n, C] (global average pool)."""

  def __init__(self, stage_sizes, bottleneck, width=64, stem="imagenet",
               zero_init_residual=False):
    super().__init__()
    k, s = (3, 1) if stem == "cifar" else (7, 2)
    self.stem_conv, self.stem_bn = _conv(3, width, k, s), nn.BatchNorm2d(width)
    self.max_pool = stem != "cifar"
    self.names, cin = [], width
    for i, num_blocks in enumerate(stage_sizes):
      for j in range(num_blocks):
        block = Block(cin, width * 2**i, 2 if (i > 0 and j == 0) else 1,
                      bottleneck, zero_init_residual)
        self.names.append(f"stage{i + 1}_block{j + 1}")
        self.add_module(self.names[-1], block)
        cin = block.out
    self.dim = cin

  def forward(self, x):
    x = F.relu(self.stem_bn(self.stem_conv(x)), inplace=True)
    if self.max_pool:
      x = F.max_pool2d(x, 3, 2, 1)
    for name in self.names:
      x = getattr(self, name)(x)
    return x.mean((2, 3))


class ViTBlock(nn.Module):
  """Pre-norm block; q, k, v as one Linear (Flax: three, same FLOPs)."""

  def __init__(self, d, num_heads, mlp_ratio):
    super().__init__()
    self.num_heads = num_heads
    self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
    self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
    self.fc1 = nn.Linear(d, d * mlp_ratio)
    self.fc2 = nn.Linear(d * mlp_ratio, d)

  def forward(self, x):
    n, t, d = x.shape
    q, k, v = self.qkv(self.ln1(x)).view(n, t, 3, self.num_heads, -1).permute(
        2, 0, 3, 1, 4)
    y = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(head dim)
    x = x + self.proj(y.transpose(1, 2).reshape(n, t, d))
    return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class ViT(nn.Module):
  """[n, 3, H, W] -> the final-LayerNorm CLS token [n, D]."""

  def __init__(self, width, depth, num_heads, patch_size=16, image_size=224,
               mlp_ratio=4, pool="cls"):
    super().__init__()
    if pool != "cls":
      raise NotImplementedError("torch_reference: ViT pool='cls' only.")
    self.dim, grid = width, image_size // patch_size
    self.patch_embed = nn.Conv2d(3, width, patch_size, patch_size)
    self.pos_embed = nn.Parameter(0.02 * torch.randn(1, grid * grid, width))
    self.cls_token = nn.Parameter(1e-6 * torch.randn(1, 1, width))
    self.cls_pos_embed = nn.Parameter(0.02 * torch.randn(1, 1, width))
    self.depth = depth
    for i in range(depth):
      self.add_module(f"block{i + 1}", ViTBlock(width, num_heads, mlp_ratio))
    self.ln_final = nn.LayerNorm(width, eps=1e-6)

  def forward(self, x):
    x = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
    cls = (self.cls_token + self.cls_pos_embed).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1)
    for i in range(self.depth):
      x = getattr(self, f"block{i + 1}")(x)
    return self.ln_final(x)[:, 0]


class MLP(nn.Module):
  """fc1, bn1, ..., fc{L}: Linear+BN+ReLU hidden layers, last Linear only."""

  def __init__(self, din, spec, hidden_bias=True, last_bias=False):
    super().__init__()
    dims = [int(d) for d in str(spec).split("-")]
    self.depth = len(dims)
    for i, d in enumerate(dims):
      last = i == len(dims) - 1
      self.add_module(f"fc{i + 1}", nn.Linear(
          din, d, bias=last_bias if last else hidden_bias))
      if not last:
        self.add_module(f"bn{i + 1}", nn.BatchNorm1d(d))
      din = d

  def forward(self, x):
    for i in range(1, self.depth):
      x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"fc{i}")(x)),
                 inplace=True)
    return getattr(self, f"fc{self.depth}")(x)


def build_encoder(model_cfg):
  """The trunk of an ssljax config's `model` section, e.g. dict(name=
  "resnet18", stem="cifar", width=8, dtype="float32")."""
  cfg = dict(model_cfg)
  name, dtype = cfg.pop("name"), cfg.pop("dtype", "float32")
  if dtype != "float32":
    raise NotImplementedError("torch_reference: float32 only.")
  return (ViT if name.startswith("vit") else ResNet)(**{**ENCODERS[name],
                                                        **cfg})


class JointEmbedding(nn.Module):
  """Views encoded one at a time: ([rep per view], [z per view])."""

  def __init__(self, model_cfg, projector_spec):
    super().__init__()
    self.encoder = build_encoder(model_cfg)
    self.projector = MLP(self.encoder.dim, projector_spec)

  def forward(self, views):
    reps = [self.encoder(x) for x in views]
    return reps, [self.projector(r) for r in reps]


def off_diagonal_sq_sum(zc):
  """Σ_{p≠q} C_pq², C = Zcᵀ Zc / (n−1), via the n×n Gram when n < d."""
  n, _ = zc.shape
  g = zc @ zc.T if n < zc.shape[1] else zc.T @ zc
  var = (zc * zc).sum(0) / (n - 1)
  return (g * g).sum() / (n - 1) ** 2 - (var * var).sum()


def vicreg(z1, z2, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0, eps=1e-4):
  """ssljax.losses.vicreg (halved std term, unbiased variance)."""
  n, d = z1.shape
  repr_loss = F.mse_loss(z1, z2)
  z1, z2 = z1 - z1.mean(0), z2 - z2.mean(0)
  std1 = torch.sqrt((z1 * z1).sum(0) / (n - 1) + eps)
  std2 = torch.sqrt((z2 * z2).sum(0) / (n - 1) + eps)
  std_loss = F.relu(1 - std1).mean() / 2 + F.relu(1 - std2).mean() / 2
  cov_loss = (off_diagonal_sq_sum(z1) + off_diagonal_sq_sum(z2)) / d
  return sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss


class TrainStep:
  """step(images uint8 [n, V, S, S, 3], labels [n]) -> VICReg loss: as
  ssljax.train.train_step without augmentation and non-finite guard."""

  def __init__(self, cfg, num_classes, memory_format=torch.channels_last,
               seed=0):
    torch.manual_seed(seed)
    if cfg.optimizer.name != "adamw":
      raise NotImplementedError("torch_reference: AdamW only.")
    self.cfg, self.memory_format = cfg, memory_format
    self.net = JointEmbedding(cfg.model, cfg.projector).to(
        memory_format=memory_format)
    self.probe = nn.Linear(self.net.encoder.dim, num_classes)
    params = list(self.net.parameters())
    o = cfg.optimizer
    self.opt = torch.optim.AdamW(
        [dict(params=[p for p in params if p.ndim > 1],
              weight_decay=o.weight_decay),
         dict(params=[p for p in params if p.ndim <= 1], weight_decay=0.0),
         dict(params=list(self.probe.parameters()), lr=cfg.probe.lr,
              weight_decay=cfg.probe.weight_decay)],
        lr=o.base_lr * cfg.batch_size / 256, betas=(o.get("b1", 0.9),
                                                    o.get("b2", 0.999)),
        eps=1e-8, fused=True)
    self.mean = torch.tensor(cfg.data.mean).view(1, 3, 1, 1)
    self.std = torch.tensor(cfg.data.std).view(1, 3, 1, 1)

  def views(self, images):
    """uint8 NHWC -> normalized float32 NCHW views (self.memory_format)."""
    return [((images[:, v].permute(0, 3, 1, 2).float() / 255 - self.mean)
             / self.std).contiguous(memory_format=self.memory_format)
            for v in range(images.shape[1])]

  def __call__(self, images, labels):
    self.net.train()
    reps, zs = self.net(self.views(images))
    loss = vicreg(zs[0], zs[1], **self.cfg.loss)
    ce = F.cross_entropy(self.probe(reps[0].detach()), labels)
    self.opt.zero_grad(set_to_none=True)
    (loss + ce).backward()
    self.opt.step()
    return loss.detach()
