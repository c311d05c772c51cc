import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.methods import mae


def _official_forward_loss(imgs_nchw, pred, mask, norm_pix_loss, p):
  """NumPy transcription of facebookresearch/mae models_mae.forward_loss
  (with its patchify on NCHW images)."""
  n, c, hh, ww = imgs_nchw.shape
  h = w = hh // p
  x = imgs_nchw.reshape(n, 3, h, p, w, p)
  x = np.einsum("nchpwq->nhwpqc", x)
  target = x.reshape(n, h * w, p * p * 3)
  if norm_pix_loss:
    mean = target.mean(axis=-1, keepdims=True)
    var = target.var(axis=-1, keepdims=True, ddof=1)  # torch .var()
    target = (target - mean) / (var + 1.e-6) ** .5
  loss = ((pred - target) ** 2).mean(axis=-1)
  return (loss * mask).sum() / mask.sum()


def test_masking_keeps_the_exact_count_and_unshuffles():
  ids_keep, mask, ids_restore = mae.random_masking(jax.random.PRNGKey(0), 6,
                                                   16, 0.75)
  assert ids_keep.shape == (6, 4)  # ⌊16 · 0.25⌋
  np.testing.assert_array_equal(np.asarray(mask).sum(1), 12)
  # kept ids are exactly the unmasked positions
  for i in range(6):
    assert set(np.asarray(ids_keep[i])) == set(np.where(mask[i] == 0)[0])
  tokens = jnp.arange(16)[None].repeat(6, 0)
  shuffled = jnp.take_along_axis(tokens, jnp.argsort(ids_restore, axis=1), 1)
  np.testing.assert_array_equal(
      jnp.take_along_axis(shuffled, ids_restore, 1), tokens)
  _, other, _ = mae.random_masking(jax.random.PRNGKey(1), 6, 16, 0.75)
  assert not np.array_equal(mask, other)
  assert not np.array_equal(mask[0], mask[1])
  keep, _, _ = mae.random_masking(jax.random.PRNGKey(0), 2, 10, 0.75)
  assert keep.shape == (2, 2)  # ⌊10 · 0.25⌋ = 2


def test_patchify_round_trip_and_order():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
  p = mae.patchify(x, 4)
  assert p.shape == (2, 4, 48)
  np.testing.assert_array_equal(mae.unpatchify(p, 4), x)
  # patch 1 is the top-right block, flattened (row, column, channel)
  np.testing.assert_array_equal(p[0, 1], np.asarray(x[0, :4, 4:8]).reshape(-1))


@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_loss_matches_the_official_forward_loss(norm_pix_loss):
  rng = np.random.default_rng(0)
  imgs_nhwc = rng.normal(size=(3, 8, 8, 3)).astype(np.float32)
  pred = rng.normal(size=(3, 4, 48)).astype(np.float32)
  mask = (rng.uniform(size=(3, 4)) < 0.75).astype(np.float32)
  mask[:, 0] = 1
  want = _official_forward_loss(imgs_nhwc.transpose(0, 3, 1, 2), pred, mask,
                                norm_pix_loss, 4)
  got = mae.mae_loss(pred, mae.patchify(jnp.asarray(imgs_nhwc), 4), mask,
                     norm_pix_loss)
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_network_init_and_features():
  net = mae.MAE(width=32, depth=2, num_heads=2, patch_size=4,
                decoder_width=16, decoder_depth=1, decoder_heads=2)
  x = jnp.ones((2, 16, 16, 3))
  v = net.init(jax.random.PRNGKey(0), [x])
  names = set(v["params"])
  assert {"patch_embed", "cls_token", "mask_token", "decoder_pred"} <= names
  assert not any("pos" in k for k in names)  # fixed, not trained
  np.testing.assert_allclose(np.std(v["params"]["cls_token"]), 0.02, rtol=0.5)
  pred, mask, latent = net.apply(v, [x], key=jax.random.PRNGKey(1))
  assert pred.shape == (2, 16, 48) and latent.shape == (2, 5, 32)
  feats = net.apply(v, x, True, method="represent")
  assert feats["rep"].shape == (2, 32) and feats["block2"].shape == (2, 32)
