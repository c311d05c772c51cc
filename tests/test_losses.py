import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import losses


def vicreg_reference(x, y, sim=25.0, std=25.0, cov=1.0):
  """facebookresearch/vicreg main_vicreg.py VICReg.forward, transcribed to
  numpy (float64), single device."""
  n, d = x.shape
  repr_loss = np.mean((x - y) ** 2)
  x = x - x.mean(0)
  y = y - y.mean(0)
  std_x = np.sqrt(x.var(0, ddof=1) + 0.0001)
  std_y = np.sqrt(y.var(0, ddof=1) + 0.0001)
  std_loss = (np.mean(np.maximum(1 - std_x, 0)) / 2
              + np.mean(np.maximum(1 - std_y, 0)) / 2)
  cov_x = x.T @ x / (n - 1)
  cov_y = y.T @ y / (n - 1)
  off = lambda c: c[~np.eye(d, dtype=bool)]
  cov_loss = (off(cov_x) ** 2).sum() / d + (off(cov_y) ** 2).sum() / d
  return sim * repr_loss + std * std_loss + cov * cov_loss


@pytest.mark.parametrize("n,d", [(64, 16), (16, 64), (32, 32)])
def test_vicreg_matches_official_formula(n, d):
  rng = np.random.default_rng(n + d)
  x = rng.normal(size=(n, d)) * 0.5
  y = x + 0.3 * rng.normal(size=(n, d))
  loss, m = losses.vicreg(jnp.asarray(x, jnp.float32),
                          jnp.asarray(y, jnp.float32))
  np.testing.assert_allclose(loss, vicreg_reference(x, y), rtol=2e-5)
  assert set(m) >= {"loss", "repr_loss", "std_loss", "cov_loss"}
  assert m["loss"].dtype == jnp.float32


def test_gram_and_covariance_paths_agree():
  rng = np.random.default_rng(0)
  for n, d in [(24, 40), (40, 24)]:  # n < d: n×n Gram; n >= d: d×d cov
    z = rng.normal(size=(n, d))
    zc = z - z.mean(0)
    c = zc.T @ zc / (n - 1)
    direct = np.sum(c**2) - np.sum(np.diag(c) ** 2)
    got = losses.off_diagonal_sq_sum(jnp.asarray(zc, jnp.float32))
    np.testing.assert_allclose(got, direct, rtol=1e-5)


def test_vicreg_bfloat16_inputs_compute_in_float32():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(32, 48)).astype(np.float32)
  y = rng.normal(size=(32, 48)).astype(np.float32)
  lo, _ = losses.vicreg(jnp.asarray(x, jnp.bfloat16),
                        jnp.asarray(y, jnp.bfloat16))
  assert lo.dtype == jnp.float32
  xb = np.asarray(jnp.asarray(x, jnp.bfloat16), np.float64)
  yb = np.asarray(jnp.asarray(y, jnp.bfloat16), np.float64)
  np.testing.assert_allclose(lo, vicreg_reference(xb, yb), rtol=1e-5)


def test_vicreg_known_answers():
  # Identical, perfectly whitened views with std 1: only the std floor's eps
  # remains (std = sqrt(1 + 1e-4) > 1), so the loss is 0.
  n, d = 8, 4
  z = np.zeros((n, d))
  z[np.arange(n), np.arange(n) % d] = 1.0
  z = (z - z.mean(0)) / z.std(0, ddof=1)
  loss, m = losses.vicreg(jnp.asarray(z, jnp.float32),
                          jnp.asarray(z, jnp.float32))
  assert float(m["repr_loss"]) == 0.0 and float(m["std_loss"]) == 0.0
  # Collapsed embeddings: std term = 25 * (1 - 0.01) (two halves).
  c = jnp.ones((16, 8))
  _, m = losses.vicreg(c, c)
  np.testing.assert_allclose(m["std_loss"], 1 - np.sqrt(1e-4), rtol=1e-6)


def test_vicreg_global_batch_under_sharding():
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  rng = np.random.default_rng(2)
  x = rng.normal(size=(64, 32)).astype(np.float32)
  y = rng.normal(size=(64, 32)).astype(np.float32)
  f = jax.jit(lambda a, b: losses.vicreg(a, b)[0])
  sharded = f(jax.device_put(x, shard), jax.device_put(y, shard))
  np.testing.assert_allclose(sharded, vicreg_reference(x, y), rtol=2e-5)


# ----------------------------------------------------------------------------
# MVEB, BYOL, SimCLR
# ----------------------------------------------------------------------------
from scipy import stats  # pylint: disable=g-import-not-at-top,wrong-import-position  # test oracle

from ssljax import ops  # pylint: disable=g-import-not-at-top,wrong-import-position


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_mveb_matches_formula_with_local_views():
  rng = np.random.default_rng(0)
  n, d = 32, 16
  zs = [_unit(rng.normal(size=(n, d))) for _ in range(4)]
  t1, t2 = _unit(rng.normal(size=(n, d))), _unit(rng.normal(size=(n, d)))
  loss, m = losses.mveb([jnp.asarray(z) for z in zs], jnp.asarray(t1),
                        jnp.asarray(t2), lambd=0.01)
  dot = lambda a, b: np.mean(np.sum(a * b, -1))
  a = (dot(zs[0], t2) + dot(zs[1], t1) + dot(zs[2], (t1 + t2) / 2)
       + dot(zs[3], (t1 + t2) / 2)) / 4
  e = np.mean([dot(-np.asarray(ops.vmf_score(jnp.asarray(z))[0]), z)
               for z in zs])
  assert float(m["align"]) == pytest.approx(a, rel=1e-5)
  assert float(m["entropy"]) == pytest.approx(e, rel=1e-4)
  assert float(loss) == pytest.approx(-a - 0.01 * e, rel=1e-5)
  # inputs are used as given: a non-normalized input changes A linearly
  _, m2 = losses.mveb([jnp.asarray(2 * zs[0])] + zs[1:2], t1, t2)
  assert float(m2["align"]) == pytest.approx(
      (2 * dot(zs[0], t2) + dot(zs[1], t1)) / 2, rel=1e-5)


def test_mveb_entropy_gradient_is_minus_score_over_n():
  rng = np.random.default_rng(1)
  n, d = 64, 8
  z1, z2 = (jnp.asarray(_unit(rng.normal(size=(n, d))), jnp.float32)
            for _ in range(2))
  t = jnp.asarray(_unit(rng.normal(size=(n, d))), jnp.float32)
  ent = lambda z: losses.mveb([z, z2], t, t)[1]["entropy"] * 2  # E_total·V
  grad = jax.grad(ent)(z1)
  s, _ = ops.vmf_score(z1)
  np.testing.assert_allclose(np.asarray(grad), -np.asarray(s) / n,
                             rtol=1e-6, atol=1e-7)


def test_entropy_ascent_spreads_a_concentrated_vmf_sample():
  n, d = 256, 16
  mu = np.eye(d)[0]
  z = stats.vonmises_fisher(mu, 20.0).rvs(n, random_state=0)
  uniformity = lambda z: np.log(np.mean(np.exp(
      -2 * np.sum((z[:, None] - z[None]) ** 2, -1))))
  r0, u0 = np.linalg.norm(z.mean(0)), uniformity(z)
  step = jax.jit(lambda z: (lambda s: s / jnp.linalg.norm(
      s, axis=-1, keepdims=True))(z - 0.05 * ops.vmf_score(z)[0]))
  zj = jnp.asarray(z, jnp.float32)
  for _ in range(40):
    zj = step(zj)
  z = np.asarray(zj, np.float64)
  r, u = np.linalg.norm(z.mean(0)), uniformity(z)
  assert r0 > 0.5 and r < 0.2 * r0, (r0, r)
  assert u < u0 - 0.5, (u0, u)


def _mesh():
  return jax.sharding.Mesh(np.asarray(jax.devices()), ("data",))


def test_mveb_score_scopes_over_eight_devices():
  rng = np.random.default_rng(2)
  n, d = 64, 8
  z = jnp.asarray(_unit(rng.normal(size=(n, d))), jnp.float32)
  mesh = _mesh()
  assert mesh.size == 8
  shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  zs = jax.device_put(z, shard)
  run = lambda scope: jax.jit(lambda z: losses.vmf_scores(
      z, eta=0.01, min_tau=0.1, scope=scope, mesh=mesh))(zs)
  s_global, tau_global = run("global")
  s_one, tau_one = ops.vmf_score(z)  # one device, whole batch
  # float32 solve; only the sharded reduction order differs
  np.testing.assert_allclose(np.asarray(s_global), np.asarray(s_one),
                             rtol=1e-4, atol=1e-4 * float(jnp.abs(s_one).max()))
  assert tau_global.shape == (1,)
  # per_device: 8 independent estimates on consecutive blocks of 8 rows
  s_dev, tau_dev = run("per_device")
  assert tau_dev.shape == (8,)
  for i in range(8):
    s_i, tau_i = ops.vmf_score(z[8 * i: 8 * (i + 1)])
    np.testing.assert_allclose(np.asarray(s_dev[8 * i: 8 * (i + 1)]),
                               np.asarray(s_i), rtol=1e-5, atol=1e-5)
    assert float(tau_dev[i]) == pytest.approx(float(tau_i), rel=1e-6)
  assert not np.allclose(np.asarray(s_dev), np.asarray(s_global), atol=1e-3)
  with pytest.raises(ValueError, match="valid: per_device, global"):
    losses.vmf_scores(z, eta=0.01, min_tau=0.1, scope="local", mesh=mesh)


def test_byol_loss_known_answers():
  rng = np.random.default_rng(3)
  p = jnp.asarray(rng.normal(size=(16, 8)), jnp.float32)
  loss, _ = losses.byol(p, p, 3.0 * p, 0.5 * p)  # same directions
  assert float(loss) == pytest.approx(0.0, abs=1e-6)
  loss, _ = losses.byol(p, p, -p, -p)  # opposite: 4 per direction
  assert float(loss) == pytest.approx(8.0, rel=1e-6)


def nt_xent_reference(z1, z2, t):
  """google-research/simclr add_contrastive_loss (single core), numpy."""
  a, b = _unit(z1), _unit(z2)
  n = len(a)
  big = 1e9
  def ce(q, k, same):
    logits = np.concatenate([q @ k.T / t, q @ same.T / t - big * np.eye(n)],
                            1)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return -np.mean(logp[np.arange(n), np.arange(n)])
  return ce(a, b, a) + ce(b, a, b)


def test_nt_xent_matches_official_formula():
  rng = np.random.default_rng(4)
  z1, z2 = rng.normal(size=(24, 8)), rng.normal(size=(24, 8))
  loss, m = losses.nt_xent(jnp.asarray(z1), jnp.asarray(z2), temperature=0.5)
  assert float(loss) == pytest.approx(nt_xent_reference(z1, z2, 0.5),
                                      rel=1e-5)
  _, m = losses.nt_xent(jnp.asarray(z1), jnp.asarray(z1), temperature=0.1)
  assert float(m["contrast_accuracy"]) == 1.0
