"""I-JEPA: the multi-block masks against the official collator's rules, the
loss and its gradient against the official code, a CLI run."""
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.methods import ijepa
from tests import helpers

CFG = ijepa.default_config().ijepa  # the official ViT-H/14 settings


def official_block_sizes(scale, aspect, grid):
  """Every (h, w) the official _sample_block_size can return, over a fine
  grid of its one uniform draw (NumPy transcription)."""
  out = set()
  for u in np.linspace(0, 1, 20001):
    s = scale[0] + u * (scale[1] - scale[0])
    keep = int(grid * grid * s)
    a = aspect[0] + u * (aspect[1] - aspect[0])
    h, w = int(round(math.sqrt(keep * a))), int(round(math.sqrt(keep / a)))
    out.add((min(h, grid - 1), min(w, grid - 1)))
  return out


def _rect(m):
  """(top, left, h, w) of a boolean [g, g] rectangle, None if not one."""
  rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
  h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
  if m.sum() != h * w:
    return None
  return rows[0], cols[0], h, w


@pytest.mark.parametrize("grid", [16, 8])
def test_masks_follow_the_official_collator(grid):
  target_sizes = official_block_sizes(CFG.target_scale, CFG.aspect, grid)
  context_sizes = official_block_sizes(CFG.context_scale, (1.0, 1.0), grid)
  sample = jax.jit(lambda k: ijepa.sample_masks(k, 16, grid, CFG))
  for seed in range(8):
    ctx, tgt = map(np.asarray, sample(jax.random.PRNGKey(seed)))
    tgt = tgt.reshape(16, 4, grid, grid)
    rects = [[_rect(t) for t in img] for img in tgt]
    sizes = {(r[2], r[3]) for img in rects for r in img}
    # 4 target blocks per image, rectangles of ONE official size per batch,
    # never touching the last row / column offsets the official randint
    # excludes.
    assert all(r is not None for img in rects for r in img)
    assert len(sizes) == 1 and sizes <= target_sizes, sizes
    h, w = sizes.pop()
    assert all(r[0] <= grid - h - 1 and r[1] <= grid - w - 1
               for img in rects for r in img)
    # One context per image: more than min_keep patches, none of them in
    # a target (no relaxation needed at these sizes), all the batch's
    # contexts truncated to the same count, each inside one square block
    # of an official context size.
    counts = ctx.sum(1)
    assert (counts > CFG.min_keep).all() and len(set(counts)) == 1
    assert not (ctx[:, None] & tgt.reshape(16, 4, -1)).any()
    for c in ctx.reshape(16, grid, grid):
      rows, cols = np.nonzero(c.any(1))[0], np.nonzero(c.any(0))[0]
      span = (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
      assert any(span[0] <= s[0] and span[1] <= s[1] for s in context_sizes)


def test_context_relaxes_the_last_exclusions_first():
  # A tiny grid where excluding all targets leaves too little: the official
  # collator drops the exclusions from the last target backwards.
  cfg = ijepa.default_config().ijepa
  cfg.update(min_keep=6, target_scale=(0.3, 0.3), aspect=(1.0, 1.0))
  ctx, tgt = ijepa.sample_masks(jax.random.PRNGKey(0), 64, 5, cfg)
  ctx, tgt = np.asarray(ctx), np.asarray(tgt)
  assert tgt.shape[1] == 4
  overlap = np.array([[(c & b).any() for b in t] for c, t in zip(ctx, tgt)])
  share = overlap.mean(0)  # per target: images whose context overlaps it
  # Relaxation happened, and it freed the last target's exclusion far more
  # often than the first's (the first is dropped only after all others;
  # dropping first-to-last would reverse this).
  assert share[-1] > 0.3 and share[0] < share[-1] / 4, share


def _official_numpy(pred_jbkd, h_btd, idx_jbk, loss="smooth_l1"):
  """forward_target + apply_masks + F.smooth_l1_loss (NumPy, float64):
  targets are the layer-normalized target-encoder tokens gathered at each
  block's indices, mask-major as apply_masks concatenates them."""
  mean = h_btd.mean(-1, keepdims=True)
  h = (h_btd - mean) / np.sqrt(h_btd.var(-1, keepdims=True) + 1e-5)
  target = np.stack([np.take_along_axis(h, idx[..., None], axis=1)
                     for idx in idx_jbk])
  d = pred_jbkd - target
  if loss == "l2":
    return np.mean(d ** 2)
  return np.mean(np.where(np.abs(d) < 1, 0.5 * d ** 2, np.abs(d) - 0.5))


def _problem(seed=0, n=4, grid=4, d=6, j=3, k=5):
  rng = np.random.default_rng(seed)
  h = rng.normal(size=(n, grid * grid, d)) * 2
  idx = np.stack([np.stack([np.sort(rng.choice(grid * grid, k, replace=False))
                            for _ in range(n)]) for _ in range(j)])
  pred = rng.normal(size=(j, n, k, d)) * 1.5
  masks = np.zeros((n, j, grid * grid), bool)
  full = np.zeros((n, j, grid * grid, d))
  for jj in range(j):
    for b in range(n):
      masks[b, jj, idx[jj, b]] = True
      full[b, jj, idx[jj, b]] = pred[jj, b]
  return h, idx, pred, masks, full


def _ours(full, h, masks, loss="smooth_l1"):
  # The targets' normalization (IJEPA.targets) is checked on the module
  # below; here it is the official one, so that the kernel is compared.
  x = jnp.asarray(h, jnp.float32)
  mean = x.mean(-1, keepdims=True)
  t = (x - mean) / jnp.sqrt(x.var(-1, keepdims=True) + 1e-5)
  return ijepa.ijepa_loss(jnp.asarray(full, jnp.float32), t,
                          jnp.asarray(masks), loss)


@pytest.mark.parametrize("loss", ["smooth_l1", "l2"])
def test_loss_matches_the_official_code(loss):
  h, idx, pred, masks, full = _problem()
  np.testing.assert_allclose(_ours(full, h, masks, loss),
                             _official_numpy(pred, h, idx, loss), rtol=1e-5)


def test_target_normalization_is_the_modules():
  # IJEPA.targets: F.layer_norm without affine (eps 1e-5) of the final
  # tokens; checked through a one-block ViT whose tokens we also read.
  from ssljax import models  # pylint: disable=g-import-not-at-top
  vit = models.build("vit_tiny", patch_size=4, image_size=16, depth=1,
                     width=8, num_heads=2, pool="gap")
  net = ijepa.IJEPA(vit, 8, 1)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 3))
  v = net.init(jax.random.PRNGKey(1), [x], train=False)
  # A trained final LayerNorm's affine: its tokens are no longer normalized.
  ln = {"scale": 1.0 + jax.random.uniform(jax.random.PRNGKey(2), (8,)),
        "bias": jax.random.normal(jax.random.PRNGKey(3), (8,))}
  v = {"params": dict(v["params"], encoder=dict(
      v["params"]["encoder"], ln_final=ln))}
  got = net.apply(v, x, method="targets")
  tok, _ = vit.apply({"params": v["params"]["encoder"]}, x, tokens=True)
  tok = np.asarray(tok, np.float64)
  want = (tok - tok.mean(-1, keepdims=True)) / np.sqrt(
      tok.var(-1, keepdims=True) + 1e-5)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_gradient_matches_the_official_pytorch_loss():
  torch = pytest.importorskip("torch", reason="needs torch (bench extra)")
  F = torch.nn.functional
  h, idx, pred, masks, full = _problem(seed=1)
  tp = torch.tensor(pred.reshape(-1, *pred.shape[2:]), dtype=torch.float32,
                    requires_grad=True)
  th = F.layer_norm(torch.tensor(h, dtype=torch.float32), (h.shape[-1],))
  # apply_masks: gather each block's indices, concatenate mask-major.
  tgt = torch.cat([torch.gather(th, 1, torch.tensor(i)[..., None].expand(
      -1, -1, h.shape[-1])) for i in idx])
  loss = F.smooth_l1_loss(tp, tgt)
  loss.backward()
  g = jax.grad(lambda f: _ours(f, h, masks))(jnp.asarray(full, jnp.float32))
  g = np.asarray(g)
  ours = np.stack([np.stack([g[b, jj, idx[jj, b]] for b in range(len(h))])
                   for jj in range(len(idx))]).reshape(tp.shape)
  np.testing.assert_allclose(float(_ours(full, h, masks)), loss.item(),
                             rtol=1e-5)
  np.testing.assert_allclose(ours, tp.grad.numpy(), rtol=1e-4, atol=1e-8)
  # Outside the target blocks no gradient reaches the predictions.
  assert np.all(g[~masks] == 0)


def _tiny_net(pool="gap"):
  from ssljax import models  # pylint: disable=g-import-not-at-top
  vit = models.build("vit_tiny", patch_size=2, image_size=16, depth=2,
                     width=16, num_heads=2, pool=pool)
  net = ijepa.IJEPA(vit, 16, 1)
  x = jax.random.normal(jax.random.PRNGKey(0), (6, 16, 16, 3))
  return net, net.init(jax.random.PRNGKey(1), [x], train=False), x


@pytest.mark.parametrize("cap", [13, 16, 40, 64])
def test_gathered_context_equals_the_masked_full_grid(cap):
  # The context encoder on the gathered context tokens (padded to cap)
  # equals the full grid attention-masked to the context: the official
  # apply_masks drops the other tokens, and attention masking is the
  # reference that drops nothing.
  net, v, x = _tiny_net()
  c = CFG.copy_and_resolve_references()
  c.min_keep = 4
  context, targets = ijepa.sample_masks(jax.random.PRNGKey(2), 6, 8, c)
  m = int(context.sum(1).max())
  assert np.all(np.asarray(context.sum(1)) == m) and m <= 13
  slots = ijepa.target_slots(c, 8)
  full_pred, full_z = net.apply(v, [x], masks=(context, targets))
  pred, z = net.apply(v, [x], masks=(context, targets), cap=cap,
                      target_slots=slots)
  ctx = np.asarray(context)
  np.testing.assert_allclose(np.asarray(z)[ctx], np.asarray(full_z)[ctx],
                             rtol=1e-5, atol=1e-5)
  assert np.all(np.asarray(z)[~ctx] == 0)
  tgt = np.asarray(targets)  # off the blocks the predictions are zeros
  np.testing.assert_allclose(pred, full_pred, rtol=1e-5, atol=1e-5)
  assert np.all(np.asarray(pred)[~tgt] == 0)


@pytest.mark.parametrize("grid", [16, 14, 8])
def test_target_slots_bound_every_official_block(grid):
  # The predictor pads each block to target_slots mask tokens: a static
  # bound that must hold every size the official sampler can return.
  sizes = official_block_sizes(CFG.target_scale, CFG.aspect, grid)
  slots = ijepa.target_slots(CFG, grid)
  assert max(h * w for h, w in sizes) <= slots


def test_predictor_keeps_context_and_mask_token_where_they_overlap():
  # A relaxed context may cover a target patch; the official predictor
  # concatenates both (the context token and the mask token at that
  # position). Dropping the overlapping context token must change the
  # prediction, gathered or not.
  net, v, x = _tiny_net()
  t = 64
  context = np.zeros((6, t), bool)
  context[:, :20] = True
  targets = np.zeros((6, 1, t), bool)
  targets[:, 0, 16:24] = True  # overlaps context patches 16..19
  masks = (jnp.asarray(context), jnp.asarray(targets))
  pred, _ = net.apply(v, [x], masks=masks, cap=32, target_slots=8)
  pred_full, _ = net.apply(v, [x], masks=masks, target_slots=8)
  np.testing.assert_allclose(pred, pred_full, rtol=1e-5, atol=1e-5)
  dropped = context.copy()
  dropped[:, 16:20] = False
  other, _ = net.apply(v, [x], masks=(jnp.asarray(dropped), masks[1]),
                       cap=32, target_slots=8)
  assert np.abs(np.asarray(other) - np.asarray(pred))[:, 0, 16:24].max() > 1e-4


def test_objective_gathers_without_changing_loss_or_gradient():
  # The whole loss and its gradient, lax.switch over T/4, T/2, T included,
  # with the gather on and off; 4, 2 and 1 target blocks leave contexts
  # that need each of the three branches.
  import ml_collections  # pylint: disable=g-import-not-at-top
  net, v, x = _tiny_net()
  caps = ijepa.context_caps(64)
  assert caps == (16, 32, 64)
  branches = set()
  for j in (4, 2, 1):
    key = jax.random.PRNGKey(10)  # contexts of 15, 25 and 37 tokens
    out = []
    for gather in (True, False):
      cfg = ijepa.default_config()
      cfg.ijepa.update(min_keep=4, num_targets=j, context_gather=gather)
      cfg.model = ml_collections.ConfigDict()
      obj = ijepa.make_objective(cfg, net, total_steps=10)
      state = obj.init_state(v)

      def loss(params, obj=obj, state=state):
        variables = dict(v, params=params, batch_stats={})
        return obj.loss(variables, state, [x], key)[0]

      out.append(jax.value_and_grad(loss)(v["params"]))
    m = int(ijepa.sample_masks(key, 6, 8, cfg.ijepa)[0].sum(1).max())
    branches.add(int(np.searchsorted(caps, m)))
    (l1, g1), (l0, g0) = out
    np.testing.assert_allclose(l1, l0, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert branches == {0, 1, 2}


def test_ema_momentum_is_linear_to_one():
  from ssljax.methods import ema  # pylint: disable=g-import-not-at-top
  cfg = ema.default_config(base=0.996, schedule="linear")
  ms = [float(ema.momentum(cfg, t, 100)) for t in (0, 50, 100)]
  np.testing.assert_allclose(ms, [0.996, 0.998, 1.0], rtol=1e-7)


def test_four_step_cli_run_on_the_comparison_config(data_dir, tmp_path):
  env = dict(os.environ, XLA_FLAGS="")  # one device: one compile
  subprocess.run(
      [sys.executable, "-m", "ssljax.cli.train",
       f"--config={helpers.ROOT}/configs/compare_cpu.py:ijepa,"
       "hierarchical_shapes", f"--workdir={tmp_path}",
       "--config.data.dataset=hierarchical_shapes/32_small",
       f"--config.data.data_dir={data_dir}", "--config.model.depth=2",
       "--config.model.width=32", "--config.model.num_heads=2",
       "--config.model.patch_size=2", "--config.model.image_size=16",
       "--config.ijepa.pred_width=16", "--config.ijepa.pred_depth=1",
       "--config.data.image_size=16", "--config.batch_size=32",
       "--config.num_steps=4", "--config.log_every=1",
       "--config.progress=False", "--config.summary_eval=False"],
      check=True, cwd=helpers.ROOT, env=env, timeout=600)
  rows = [l for l in open(tmp_path / "metrics.jsonl")
          if '"context_fraction"' in l]
  assert len(rows) == 4
