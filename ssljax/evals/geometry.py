"""Class geometry of features: nearest class centre, CDNV, effective rank.

Definitions follow Galanti et al. (ICLR 2022) as used by Ben-Shaul et al.
(NeurIPS 2023, "Reverse engineering SSL").

  class_means    μ_c from the features of class c (absent classes masked)
  ncc_accuracy   each test point takes the class of the nearest TRAIN mean
  cdnv           mean over class pairs i<j of (Var_i + Var_j) / (2‖μ_i−μ_j‖²)
  rankme         effective rank exp(H(σ/‖σ‖₁)) of the embedding (Garrido et
                 al., ICML 2023), a collapse monitor that needs no labels
  permute_labels the random-label control: the same label multiset, shuffled

All statistics are in float32 over every row given (the global set when the
arrays are sharded). Class counts are exact; classes with no sample are
excluded from pairs.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ssljax.ops import l2_normalize


def _f32(x):
  return jnp.asarray(x, jnp.float32)


def num_classes_of(*ys):
  return int(max(int(np.max(np.asarray(y))) for y in ys)) + 1


def pairwise_sq_distances(mu_cd):
  """[C, C] squared Euclidean distances between rows, via the Gram matrix
  (no [C, C, d] intermediate); centring first keeps it accurate."""
  mu_cd = mu_cd - mu_cd.mean(0)
  sq_c = jnp.sum(mu_cd * mu_cd, -1)
  d2_cc = sq_c[:, None] + sq_c[None] - 2.0 * mu_cd @ mu_cd.T
  return jnp.maximum(d2_cc, 0.0) * (1.0 - jnp.eye(len(sq_c)))


@functools.partial(jax.jit, static_argnames="num_classes")
def class_means(x_nd, y_n, *, num_classes):
  """(μ_cd, count_c). Rows of absent classes are 0 with count 0."""
  x_nd = _f32(x_nd)
  sum_cd = jax.ops.segment_sum(x_nd, y_n, num_segments=num_classes)
  count_c = jax.ops.segment_sum(jnp.ones_like(y_n, jnp.float32), y_n,
                                num_segments=num_classes)
  return sum_cd / jnp.maximum(count_c, 1.0)[:, None], count_c


@functools.partial(jax.jit, static_argnames=("num_classes", "normalize"))
def _ncc_predict(train_x, train_y, test_x, *, num_classes, normalize):
  train_x, test_x = _f32(train_x), _f32(test_x)
  if normalize:
    train_x, test_x = l2_normalize(train_x), l2_normalize(test_x)
  mu_cd, count_c = class_means(train_x, train_y, num_classes=num_classes)
  # argmin_c ‖x−μ_c‖² = argmin_c ‖μ_c‖² − 2⟨x, μ_c⟩; O(n·C) memory.
  score_nc = (jnp.sum(mu_cd * mu_cd, -1)[None] - 2.0 * test_x @ mu_cd.T)
  score_nc = jnp.where(count_c[None] > 0, score_nc, jnp.inf)
  return score_nc.argmin(-1)


def ncc_accuracy(train_x, train_y, test_x, test_y, *, normalize=False,
                 num_classes=None):
  """Nearest-class-centre accuracy of test points against TRAIN class means.

  Euclidean distance on the raw features; `normalize=True` L2-normalizes
  every feature first (means are then means of unit vectors, not re-normed).
  NCC train accuracy is `ncc_accuracy(x, y, x, y)`.
  """
  num_classes = num_classes or num_classes_of(train_y, test_y)
  pred = _ncc_predict(train_x, jnp.asarray(train_y, jnp.int32), test_x,
                      num_classes=num_classes, normalize=normalize)
  correct = jnp.sum(pred == jnp.asarray(test_y, jnp.int32))
  return int(correct) / len(pred)


@functools.partial(jax.jit, static_argnames="num_classes")
def _cdnv(x_nd, y_n, *, num_classes):
  x_nd = _f32(x_nd)
  mu_cd, count_c = class_means(x_nd, y_n, num_classes=num_classes)
  # Var_c as the mean of ‖x − μ_c‖², not E‖x‖² − ‖μ‖² (cancellation).
  sq_n = jnp.sum(jnp.square(x_nd - mu_cd[y_n]), -1)
  var_c = jax.ops.segment_sum(sq_n, y_n, num_segments=num_classes)
  var_c = var_c / jnp.maximum(count_c, 1.0)
  dist_cc = pairwise_sq_distances(mu_cd)
  present = count_c > 0
  pair_cc = jnp.triu(present[:, None] & present[None], k=1)
  ratio_cc = (var_c[:, None] + var_c[None]) / (2.0 * dist_cc)
  return jnp.sum(jnp.where(pair_cc, ratio_cc, 0.0)) / jnp.sum(pair_cc)


def cdnv(x, y, *, num_classes=None):
  """Class-distance normalized variance (lower = tighter clusters).

  mean over class pairs i<j of (Var_i + Var_j) / (2‖μ_i − μ_j‖²), with μ_c
  the mean and Var_c the mean squared distance to μ_c of class-c features
  (a per-class total variance, not per coordinate). Two classes with equal
  means give inf. For isotropic Gaussian classes, E[Var] = dσ², so
  CDNV ≈ dσ²/‖Δμ‖².
  """
  num_classes = num_classes or num_classes_of(y)
  return float(_cdnv(x, jnp.asarray(y, jnp.int32), num_classes=num_classes))


@jax.jit
def _rankme(x_nd, eps):
  x_nd = _f32(x_nd)
  # Not via eig(XᵀX): float32 squaring puts a floor of ~3e-4·σ_max under
  # every singular value, which inflates the rank of collapsed embeddings.
  s = jnp.linalg.svd(x_nd, compute_uv=False)
  p = s / jnp.sum(s) + eps
  return jnp.exp(-jnp.sum(p * jnp.log(p)))


def rankme(x, *, eps=1e-7):
  """RankMe effective rank, in [1, min(n, d)]: exp of the entropy of the
  singular values normalized to sum 1 (+eps, as in the paper). Features are
  not centred, as in the paper. Falls towards 1 as the embedding collapses."""
  return float(_rankme(x, jnp.float32(eps)))


def permute_labels(y, seed=0):
  """Random-label control: a uniformly random permutation of the label
  vector, so class sizes are kept and any label-feature relation is gone."""
  y = np.asarray(y)
  return y[np.random.default_rng(seed).permutation(len(y))]
