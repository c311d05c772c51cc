"""Unsupervised clustering of features and its agreement with labels.

  kmeans      Lloyd iterations from k-means++ seeds, best of `restarts` by
              inertia (jnp, jitted; memory O(n·k) per assignment pass)
  nmi, ari    normalized mutual information (arithmetic-mean normalization,
              sklearn's default) and adjusted Rand index, from the
              contingency table
  kmeans_scores  k-means with k = number of classes, then NMI and ARI
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np


def _assign(x_nd, c_kd):
  # argmin_k ‖x − c_k‖² = argmin_k ‖c_k‖² − 2⟨x, c_k⟩
  score_nk = jnp.sum(c_kd * c_kd, -1)[None] - 2.0 * x_nd @ c_kd.T
  return score_nk.argmin(-1), score_nk.min(-1) + jnp.sum(x_nd * x_nd, -1)


def _plusplus(key, x_nd, k):
  """k-means++ seeding (Arthur & Vassilvitskii 2007)."""
  n = x_nd.shape[0]
  key, sub = jax.random.split(key)
  c_kd = jnp.zeros((k, x_nd.shape[1]), x_nd.dtype)
  c_kd = c_kd.at[0].set(x_nd[jax.random.randint(sub, (), 0, n)])
  d2_n = jnp.sum(jnp.square(x_nd - c_kd[0]), -1)

  def body(i, carry):
    c_kd, d2_n, key = carry
    key, sub = jax.random.split(key)
    j = jax.random.choice(sub, n, p=d2_n / jnp.sum(d2_n))
    c_kd = c_kd.at[i].set(x_nd[j])
    d2_n = jnp.minimum(d2_n, jnp.sum(jnp.square(x_nd - x_nd[j]), -1))
    return c_kd, d2_n, key

  return jax.lax.fori_loop(1, k, body, (c_kd, d2_n, key))[0]


@functools.partial(jax.jit, static_argnames=("k", "iters", "restarts"))
def _kmeans(x_nd, key, *, k, iters, restarts):
  x_nd = jnp.asarray(x_nd, jnp.float32)

  def one(key):
    def step(c_kd, _):
      a_n, _ = _assign(x_nd, c_kd)
      sum_kd = jax.ops.segment_sum(x_nd, a_n, num_segments=k)
      cnt_k = jax.ops.segment_sum(jnp.ones_like(a_n, jnp.float32), a_n,
                                  num_segments=k)
      # An emptied cluster keeps its centre instead of becoming 0/0.
      c_kd = jnp.where(cnt_k[:, None] > 0,
                       sum_kd / jnp.maximum(cnt_k, 1.0)[:, None], c_kd)
      return c_kd, None

    c_kd, _ = jax.lax.scan(step, _plusplus(key, x_nd, k), None, length=iters)
    a_n, d2_n = _assign(x_nd, c_kd)
    return a_n, jnp.sum(jnp.maximum(d2_n, 0.0))

  a_rn, inertia_r = jax.lax.map(one, jax.random.split(key, restarts))
  return a_rn[inertia_r.argmin()], inertia_r.min()


def kmeans(x, k, *, iters=50, restarts=3, seed=0):
  """Returns (assignment [n] int, inertia) of the best of `restarts` runs."""
  a, inertia = _kmeans(x, jax.random.key(seed), k=k, iters=iters,
                       restarts=restarts)
  return np.asarray(a), float(inertia)


def _contingency(a, b):
  a, b = np.unique(a, return_inverse=True)[1], np.unique(
      b, return_inverse=True)[1]
  return jnp.asarray(np.histogram2d(a, b, bins=(a.max() + 1, b.max() + 1))[0],
                     jnp.float32)


def _xlogx(p):
  return jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)


def nmi(labels_true, labels_pred):
  """I(U;V) / mean(H(U), H(V)) (sklearn normalized_mutual_info_score)."""
  n_uv = _contingency(labels_true, labels_pred)
  p_uv = n_uv / n_uv.sum()
  p_u, p_v = p_uv.sum(1), p_uv.sum(0)
  h_u, h_v = -jnp.sum(_xlogx(p_u)), -jnp.sum(_xlogx(p_v))
  mi = jnp.sum(_xlogx(p_uv)) - jnp.sum(p_uv * (
      jnp.log(jnp.where(p_u > 0, p_u, 1.0))[:, None]
      + jnp.log(jnp.where(p_v > 0, p_v, 1.0))[None]))
  denom = (h_u + h_v) / 2.0
  return float(jnp.where(denom > 0, mi / jnp.maximum(denom, 1e-30), 1.0))


def ari(labels_true, labels_pred):
  """Adjusted Rand index (Hubert & Arabie 1985)."""
  n_uv = _contingency(labels_true, labels_pred)
  comb2 = lambda v: v * (v - 1.0) / 2.0
  s_uv = jnp.sum(comb2(n_uv))
  s_u, s_v = jnp.sum(comb2(n_uv.sum(1))), jnp.sum(comb2(n_uv.sum(0)))
  expected = s_u * s_v / comb2(n_uv.sum())
  top = s_uv - expected
  bottom = (s_u + s_v) / 2.0 - expected
  return float(jnp.where(bottom != 0, top / jnp.where(bottom != 0, bottom,
                                                      1.0), 1.0))


def kmeans_scores(x, y, *, restarts=3, seed=0):
  """k-means with k = number of distinct labels; NMI and ARI against y."""
  k = len(np.unique(np.asarray(y)))
  a, inertia = kmeans(x, k, restarts=restarts, seed=seed)
  return {"nmi": nmi(y, a), "ari": ari(y, a), "inertia": inertia}
