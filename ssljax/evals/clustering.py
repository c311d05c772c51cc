"""Unsupervised clustering of features and its agreement with labels.

  kmeans      Lloyd iterations from k-means++ seeds, best of `restarts` by
              inertia (jnp, jitted; memory O(n·k) per assignment pass)
  nmi, ari, rand_index
              normalized mutual information (arithmetic-mean normalization,
              sklearn's default), adjusted Rand index and Rand index, from
              the contingency table
  kmeans_scores  k-means with k = number of classes, then NMI, ARI and RI
  agglomerative_scores
              the average-linkage (UPGMA) dendrogram of the points cut at
              k = number of classes, then NMI, ARI and RI (on a seeded
              subsample: the dendrogram costs O(m³) time, O(m²) memory)
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ssljax.evals import geometry
from ssljax.evals import hierarchy


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


def rand_index(labels_true, labels_pred):
  """Rand index: the fraction of the n(n−1)/2 pairs on which the two
  partitions agree (both together or both apart),
    RI = 1 + (2·Σ_ij C(n_ij, 2) − Σ_i C(a_i, 2) − Σ_j C(b_j, 2)) / C(n, 2)
  with n_ij the contingency table and a, b its margins."""
  n_uv = _contingency(labels_true, labels_pred)
  comb2 = lambda v: v * (v - 1.0) / 2.0
  s_uv = jnp.sum(comb2(n_uv))
  s_u, s_v = jnp.sum(comb2(n_uv.sum(1))), jnp.sum(comb2(n_uv.sum(0)))
  total = comb2(n_uv.sum())
  return float(jnp.where(total > 0, 1.0 + (2.0 * s_uv - s_u - s_v)
                         / jnp.maximum(total, 1.0), 1.0))


def _scores(y, a):
  return {"nmi": nmi(y, a), "ari": ari(y, a), "ri": rand_index(y, a)}


def kmeans_scores(x, y, *, restarts=3, seed=0):
  """k-means with k = number of distinct labels; NMI, ARI, RI against y."""
  k = len(np.unique(np.asarray(y)))
  a, inertia = kmeans(x, k, restarts=restarts, seed=seed)
  return dict(_scores(y, a), inertia=inertia)


def agglomerative_scores(x, y, *, max_points=1000, seed=0):
  """Average-linkage (UPGMA, Euclidean) dendrogram of the points, cut at
  k = the number of distinct labels of y; NMI, ARI and RI against y.

  y: one label array, or a list of them (hierarchy levels): then a list of
  results, every level scored on cuts of the SAME dendrogram. With more
  than `max_points` rows, a uniformly random subset of that many (seeded)
  is clustered and scored: UPGMA is O(m²) per merge, O(m³) in all. Each
  result also has "points", the number of rows scored.
  """
  levels = [np.asarray(y)] if np.ndim(y[0]) == 0 else [
      np.asarray(v) for v in y]
  x = np.asarray(x, np.float32)
  if len(x) > max_points:
    keep = np.sort(np.random.default_rng(seed).choice(len(x), max_points,
                                                      replace=False))
    x, levels = x[keep], [v[keep] for v in levels]
  dist = jnp.sqrt(geometry.pairwise_sq_distances(jnp.asarray(x)))
  cuts = hierarchy.average_linkage_cut(
      dist, [len(np.unique(v)) for v in levels])
  out = [dict(_scores(v, a), points=len(x)) for v, a in zip(levels, cuts)]
  return out[0] if np.ndim(y[0]) == 0 else out
