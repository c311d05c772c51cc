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

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F

from ssljax import train_state
from ssljax import train_step
from ssljax.data import pipeline
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
    m = cfg.model
    self.backbone = recipe.resnet(m.name, width=m.width,
                                  zero_init_residual=True)
    dims = [self.backbone.out_dim] + [int(d) for d in cfg.projector.split(
        "-")]
    self.projector = recipe.mlp(dims, hidden_bias=True, last_bias=False)
    self.cfg = cfg

  def worker_losses(self, x, y):
    """Each worker's loss: MSE on its own rows, std / cov on all rows."""
    c = self.cfg.loss
    zx = self.projector(self.backbone(x))  # SyncBN: the global batch
    zy = self.projector(self.backbone(y))
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


def _ssljax_params(params, stats):
  out = recipe.encoder_to_torch(params["encoder"], stats["encoder"])
  out.update(recipe.mlp_from_flax(params["projector"], stats["projector"],
                                  "projector"))
  return out


def test_vicreg_step_equals_the_official_step():
  with jax.enable_x64(True):
    cfg = _config()
    torch.manual_seed(0)
    official = Official(cfg).double()
    mesh = train_state.make_mesh(jax.devices()[:W])
    s = train_state.setup(cfg, cfg.batch_size, 10, mesh=mesh)
    state = train_state.init_state(s, 0)
    # The same start: the official init, imported (heads too).
    params, stats = dict(state.params), dict(state.batch_stats)
    params["encoder"], stats["encoder"] = recipe.encoder_to_flax(
        official.backbone, params["encoder"], stats["encoder"])
    params["projector"], stats["projector"] = recipe.mlp_to_flax(
        official.projector)
    f64 = lambda t: jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), t)
    put = lambda t, like: jax.device_put(
        f64(t), jax.tree.map(lambda x: x.sharding, like))
    params, stats = put(params, state.params), put(stats, state.batch_stats)
    state = state.replace(params=params, batch_stats=stats,
                          opt_state=s.tx.init(params))
    step_fn = train_step.jit_train_step(s)

    lars = recipe.LARS(official.parameters(), weight_decay=cfg.optimizer
                       .weight_decay, momentum=cfg.optimizer.momentum,
                       eta=cfg.optimizer.trust_coefficient)
    base_lr = cfg.optimizer.base_lr * cfg.batch_size / 256
    rng = np.random.default_rng(0)
    for step in range(K):
      imgs = recipe.images(rng, cfg.batch_size, 2, cfg.data.image_size)
      labels = rng.integers(0, 10, cfg.batch_size)
      state, _ = step_fn(state, pipeline.to_global(
          {"global": imgs, "label": labels.astype(np.int32)}, mesh))
      for g in lars.param_groups:
        g["lr"] = recipe.warmup_cosine_lr(step, base_lr, 2, K)
      x, y = recipe.views_torch(imgs, cfg.data.mean, cfg.data.std)
      recipe.ddp_average(official, official.worker_losses(x, y))
      lars.step()
      want = {**recipe.state_dict(official.backbone, "backbone"),
              **recipe.state_dict(official.projector, "projector")}
      got = _ssljax_params(jax.device_get(state.params),
                           jax.device_get(state.batch_stats))
      errors = recipe.max_relative_errors(got, want)
      worst = sorted(errors.items(), key=lambda kv: -kv[1])[:5]
      assert max(errors.values()) <= RTOL, (step, worst)
