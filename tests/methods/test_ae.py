import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ssljax import train
from ssljax.methods import ae
from tests import helpers


def _corruption(**kw):
  c = ae.default_config().corruption
  c.update(kw)
  return c


def test_patch_mask_masks_exactly_the_ratio_in_whole_patches():
  m = np.asarray(ae.patch_mask(jax.random.PRNGKey(0), 5, 16, 4, 0.25))
  assert m.shape == (5, 16, 16, 1)
  patches = m[..., 0].reshape(5, 4, 4, 4, 4).transpose(0, 1, 3, 2, 4)
  # every 4×4 patch is all masked or all kept, 4 of 16 masked per image
  assert np.all(patches.min(axis=(3, 4)) == patches.max(axis=(3, 4)))
  np.testing.assert_array_equal(patches[..., 0, 0].sum(axis=(1, 2)), 4)
  other = np.asarray(ae.patch_mask(jax.random.PRNGKey(1), 5, 16, 4, 0.25))
  assert not np.array_equal(m, other)
  assert not np.array_equal(m[0], m[1])  # per-example masks


def test_corruptions():
  x = jnp.ones((4, 8, 8, 3))
  key = jax.random.PRNGKey(3)
  same, mask = ae.corrupt(key, x, _corruption(kind="none"))
  assert mask is None and same is x
  noisy, _ = ae.corrupt(jax.random.PRNGKey(3), jnp.zeros((64, 16, 16, 3)),
                        _corruption(kind="gaussian", noise_std=0.3))
  np.testing.assert_allclose(np.std(np.asarray(noisy)), 0.3, rtol=0.02)
  masked, mask = ae.corrupt(key, x, _corruption(kind="mask", mask_ratio=0.5,
                                                patch_size=2))
  np.testing.assert_array_equal(np.asarray(masked),
                                1 - np.broadcast_to(np.asarray(mask), x.shape))


def test_reconstruction_loss_all_and_masked_pixels():
  rng = np.random.default_rng(0)
  x, x_hat = rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(2, 4, 4, 3))
  mask = (rng.uniform(size=(2, 4, 4, 1)) < 0.5).astype(np.float32)
  err = (x_hat - x) ** 2
  loss, m = ae.reconstruction_loss(x_hat, x, mask, "masked")
  want = err[np.broadcast_to(mask, err.shape) > 0].mean()
  np.testing.assert_allclose(loss, want, rtol=1e-5)
  np.testing.assert_allclose(m["recon_mse"], err.mean(), rtol=1e-5)
  loss_all, _ = ae.reconstruction_loss(x_hat, x, mask, "all")
  np.testing.assert_allclose(loss_all, err.mean(), rtol=1e-5)


@pytest.mark.parametrize("size", [16, 32])
def test_decoder_output_shape(size):
  dec = ae.Decoder(image_size=size, width=32, start_size=4)
  out, _ = dec.init_with_output(jax.random.PRNGKey(0), jnp.ones((2, 12)),
                                train=False)
  assert out.shape == (2, size, size, 3) and out.dtype == jnp.float32


def test_bad_configs_are_refused_with_the_valid_values():
  with pytest.raises(ValueError, match="valid: none, gaussian, mask"):
    ae.check_corruption(_corruption(kind="blur"), 32)
  with pytest.raises(ValueError, match="needs kind='mask'"):
    ae.check_corruption(_corruption(loss_on="masked"), 32)
  with pytest.raises(ValueError, match="does not divide data.image_size"):
    ae.check_corruption(_corruption(kind="mask", patch_size=5), 32)
  with pytest.raises(ValueError, match="by doubling"):
    ae.num_upsamples(24, 4)


def test_ae_reconstruction_loss_falls_over_100_steps(data_dir, tmp_path):
  cfg = helpers.load_config("compare_cpu", "ae,mnist5k")
  tiny = helpers.tiny_config(data_dir)
  cfg.model, cfg.data.data_dir = tiny.model, data_dir
  cfg.data.image_size, cfg.data.num_threads = 16, 2
  cfg.decoder.width = 32
  # the config's own schedule (25 epochs), cut after 100 steps
  cfg.batch_size, cfg.stop_after_steps, cfg.log_every = 64, 100, 1
  cfg.checkpoint.every, cfg.progress = 100, False
  state = train.train_and_evaluate(cfg, str(tmp_path))
  assert int(state.step) == 100
  loss = np.array([json.loads(l)["recon_mse"]
                   for l in open(tmp_path / "metrics.jsonl")])
  assert len(loss) == 100 and np.all(np.isfinite(loss))
  first, last = loss[:10].mean(), loss[-10:].mean()
  assert last < 0.5 * first, (first, last)
