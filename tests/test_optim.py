import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import torch

from ssljax import optim
from tests import recipe


def _cfg(**kw):
  c = dict(name="lars", base_lr=0.2, weight_decay=1e-6, momentum=0.9,
           trust_coefficient=0.001, warmup_epochs=2, warmup_start_factor=0.0,
           end_factor=0.0, clip_norm=0.0)
  c.update(kw)
  return ml_collections.ConfigDict(c)


def test_lr_scaling_and_schedule_shape():
  cfg = _cfg(warmup_start_factor=1e-3, end_factor=1e-3)
  lr = optim.schedule(cfg, global_batch=512, total_steps=100,
                      steps_per_epoch=10)
  peak = 0.2 * 512 / 256
  np.testing.assert_allclose(lr(0), 1e-3 * peak, rtol=1e-4)
  np.testing.assert_allclose(lr(20), peak, rtol=1e-5)
  np.testing.assert_allclose(lr(100), 1e-3 * peak, rtol=1e-4)
  assert lr(10) < lr(20) and lr(60) < lr(20)


def test_lars_excludes_biases_and_norms_from_decay_and_adaptation():
  params = {"kernel": jnp.full((4, 4), 2.0), "bias": jnp.full((4,), 2.0)}
  grads = {"kernel": jnp.full((4, 4), 0.5), "bias": jnp.full((4,), 0.5)}
  tx, _ = optim.make(_cfg(warmup_epochs=0, weight_decay=0.1), 256, 10, 1)
  updates, _ = tx.update(grads, tx.init(params), params)
  # bias: plain momentum SGD step, -lr * g (no decay, no trust ratio).
  np.testing.assert_allclose(updates["bias"], -0.2 * 0.5, rtol=1e-5)
  # kernel: trust ratio 0.001 * ||w|| / ||g + wd w|| scales the step.
  g = 0.5 + 0.1 * 2.0
  ratio = 0.001 * np.linalg.norm(np.full((4, 4), 2.0)) / np.linalg.norm(
      np.full((4, 4), g))
  np.testing.assert_allclose(updates["kernel"], -0.2 * ratio * g, rtol=1e-5)


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_every_optimizer_decreases_a_quadratic(name):
  params = {"w": jnp.ones((3, 3))}
  tx, _ = optim.make(_cfg(name=name, warmup_epochs=0, base_lr=0.05,
                          clip_norm=1.0), 256, 100, 10)
  state = tx.init(params)
  for _ in range(20):
    g = {"w": 2 * params["w"]}
    u, state = tx.update(g, state, params)
    params = optax.apply_updates(params, u)
  assert float(jnp.sum(params["w"] ** 2)) < 9.0


def test_unknown_optimizer():
  with pytest.raises(ValueError, match="valid: lars, larc, adamw, sgd"):
    optim.make(_cfg(name="lamb"), 256, 10, 1)


def test_larc_leaves_a_zero_gradient_alone_as_the_official_skip():
  """SwAV's frozen prototypes: the official optimizer skips a None
  gradient; under LARC a zero gradient is neither decayed nor scaled, so
  the parameter and its momentum stay as they were, while a parameter
  with a gradient gets (g + wd·p)·η‖p‖/(‖g‖ + wd‖p‖ + 1e-8) after
  momentum, at the rate."""
  tx, _ = optim.make(_cfg(name="larc", weight_decay=0.1, warmup_epochs=0),
                     256, 10, 1)
  params = {"frozen": jnp.ones((3, 2)), "w": jnp.full((3, 2), 2.0)}
  grads = {"frozen": jnp.zeros((3, 2)), "w": jnp.full((3, 2), 0.5)}
  state = tx.init(params)
  upd, state = tx.update(grads, state, params)
  assert np.all(np.asarray(upd["frozen"]) == 0)
  p_norm, g_norm = np.sqrt(6) * 2.0, np.sqrt(6) * 0.5
  rate = 0.001 * p_norm / (g_norm + 0.1 * p_norm + 1e-8)
  np.testing.assert_allclose(upd["w"], -0.2 * (0.5 + 0.1 * 2.0) * rate,
                             rtol=1e-6)


def test_kernel_mask_excludes_vit_attention_biases():
  import jax  # pylint: disable=g-import-not-at-top
  from ssljax import models  # pylint: disable=g-import-not-at-top
  net = models.build("vit_tiny", patch_size=4, image_size=16)
  params = jax.eval_shape(net.init, jax.random.key(0),
                          jnp.zeros((1, 16, 16, 3)))["params"]
  flat = {"/".join(str(getattr(k, "key", k)) for k in path): (p.ndim, m)
          for (path, p), m in zip(
              jax.tree_util.tree_flatten_with_path(params)[0],
              jax.tree.leaves(optim.kernel_mask(params)))}
  biases = {k: v for k, v in flat.items() if k.endswith("/bias")}
  assert any(ndim == 2 for ndim, _ in biases.values())  # [heads, head_dim]
  assert not any(m for _, m in biases.values())
  assert all(m == (ndim > 1) for k, (ndim, m) in flat.items()
             if not k.endswith("/bias"))
  assert any(m for _, m in flat.values())


def test_bias_lr_scale_scales_only_biases_and_norms():
  # Barlow Twins' recipe: biases and BN parameters at 0.0048 / 0.2 of the
  # weights' learning rate; kernels unchanged.
  params = {"kernel": jnp.full((4, 4), 2.0), "bias": jnp.full((4,), 2.0),
            "bn": {"scale": jnp.ones((4,))}}
  grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
  out = {}
  for scale in (1.0, 0.024):
    tx, _ = optim.make(_cfg(warmup_epochs=0, bias_lr_scale=scale), 256, 10, 1)
    state = tx.init(params)
    for _ in range(2):  # through the momentum
      updates, state = tx.update(grads, state, params)
    out[scale] = updates
  np.testing.assert_allclose(out[0.024]["bias"], 0.024 * out[1.0]["bias"],
                             rtol=1e-6)
  np.testing.assert_allclose(out[0.024]["bn"]["scale"],
                             0.024 * out[1.0]["bn"]["scale"], rtol=1e-6)
  np.testing.assert_array_equal(out[0.024]["kernel"], out[1.0]["kernel"])


def test_nesterov_sgd_takes_the_look_ahead_step():
  # Constant gradient g, momentum m, lr η: heavy ball steps −η·g, then
  # −η·g(1 + m); Nesterov −η·g(1 + m), then −η·g(1 + m + m²).
  params = {"kernel": jnp.zeros((2, 2))}
  grads = {"kernel": jnp.ones((2, 2))}
  steps = {}
  for nesterov in (False, True):
    tx, _ = optim.make(_cfg(name="sgd", base_lr=0.1, weight_decay=0.0,
                            warmup_epochs=0, momentum=0.9, end_factor=1.0,
                            nesterov=nesterov), 256, 10, 1)
    state = tx.init(params)
    steps[nesterov] = []
    for _ in range(2):
      u, state = tx.update(grads, state, params)
      steps[nesterov].append(float(u["kernel"][0, 0]))
  np.testing.assert_allclose(steps[False], [-0.1, -0.19], rtol=1e-6)
  np.testing.assert_allclose(steps[True], [-0.19, -0.271], rtol=1e-6)


def test_per_parameter_clipping_is_dinos_and_weight_decay_follows_a_cosine():
  # DINO's clip_gradients: each parameter's gradient to norm <= 3 alone.
  params = {"a": jnp.zeros((2, 2)), "b": jnp.zeros((3,))}
  grads = {"a": jnp.full((2, 2), 3.0), "b": jnp.asarray([0.1, 0.2, 0.2])}
  tx = optim.clip_per_param(3.0)
  out, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(np.linalg.norm(out["a"]), 3.0 * 6 / (6 + 1e-6),
                             rtol=1e-6)
  np.testing.assert_array_equal(out["b"], grads["b"])  # norm 0.3: kept
  # wd 0.04 -> 0.4 over 100 steps, the official cosine_scheduler.
  wd = optim.weight_decay(_cfg(weight_decay=0.04, weight_decay_end=0.4), 100)
  ref = [0.4 + 0.5 * (0.04 - 0.4) * (1 + np.cos(np.pi * t / 100))
         for t in (0, 50, 100)]
  np.testing.assert_allclose([float(wd(t)) for t in (0, 50, 100)], ref,
                             rtol=1e-6)
  assert optim.weight_decay(_cfg(weight_decay=0.04), 100) == 0.04
  # adamw with the schedule decays by lr · wd(t) · p.
  tx, _ = optim.make(_cfg(name="adamw", base_lr=0.1, weight_decay=0.04,
                          weight_decay_end=0.4, warmup_epochs=0,
                          end_factor=1.0), 256, 100, 1)
  p = {"kernel": jnp.ones((2, 2))}
  state = tx.init(p)
  for t in range(51):  # zero gradients: the update is the decay alone
    u, state = tx.update({"kernel": jnp.zeros((2, 2))}, state, p)
    if t == 0:
      np.testing.assert_allclose(u["kernel"], -0.1 * ref[0], rtol=1e-5)
  np.testing.assert_allclose(u["kernel"], -0.1 * ref[1], rtol=1e-5)


def test_lars_lr_after_momentum_is_the_official_lars():
  # facebookresearch/vicreg's LARS (tests/recipe.py) through warm-up and
  # cosine: equal with lars_lr_after_momentum, not with optax.lars's order.
  rng = np.random.default_rng(0)
  w0 = {"kernel": rng.normal(size=(4, 3)), "bias": rng.normal(size=(3,))}
  grads = [{k: rng.normal(size=v.shape) for k, v in w0.items()}
           for _ in range(6)]
  lr = lambda step: recipe.warmup_cosine_lr(step, 0.2 * 256 / 256, 2, 6)

  def ours(after):
    cfg = _cfg(warmup_epochs=2, end_factor=0.001, weight_decay=0.1,
               lars_lr_after_momentum=after)
    with jax.enable_x64(True):
      tx, _ = optim.make(cfg, 256, 6, 1)
      p = jax.tree.map(jnp.asarray, w0)
      state = tx.init(p)
      for g in grads:
        u, state = tx.update(jax.tree.map(jnp.asarray, g), state, p)
        p = optax.apply_updates(p, u)
      return jax.device_get(p)

  t = {k: torch.tensor(v, requires_grad=True) for k, v in w0.items()}
  lars = recipe.LARS(list(t.values()), weight_decay=0.1, momentum=0.9,
                     eta=0.001)
  for step, g in enumerate(grads):
    for k in t:
      t[k].grad = torch.tensor(g[k])
    lars.param_groups[0]["lr"] = lr(step)
    lars.step()
  official = {k: v.detach().numpy() for k, v in t.items()}
  after, before = ours(True), ours(False)
  for k in official:  # optax computes the schedule's rate in float32
    np.testing.assert_allclose(after[k], official[k], rtol=1e-7)
  assert not np.allclose(before["kernel"], official["kernel"], rtol=1e-6)
