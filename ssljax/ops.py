"""Numerical kernels shared by losses: exact selection, the vMF score.

  kth_largest  exact k-th largest entry of an array by bisection on the
               float32 bit pattern: 32 counting passes, no sort
  vmf_score    Stein score estimate ŝ ≈ ∇ log q(z) with a von Mises–Fisher
               kernel, for unit-norm rows z (MVEB)
  l2_normalize rows to unit norm (zero rows stay zero)
"""

import jax
import jax.numpy as jnp


def l2_normalize(x):
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _sortable(x):
  """float32 -> uint32 whose unsigned order is the float order."""
  b = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
  return jnp.where(b >> 31 == 1, ~b, b | jnp.uint32(0x80000000))


def _unsortable(u):
  b = jnp.where(u >> 31 == 1, u & jnp.uint32(0x7FFFFFFF), ~u)
  return jax.lax.bitcast_convert_type(b, jnp.float32)


def kth_largest(x, k):
  """Exact k-th largest (1-based) of all entries of x (float32, no NaN).

  The answer is the largest t with #{x ≥ t} ≥ k. Bisection over the 2³²
  ordered bit patterns takes 32 passes of one comparison + count each:
  O(32·N) work and O(N) memory, where a sort of N = n² entries costs
  O(N log N) with a large constant (and top_k with k = N/2 is a sort).
  """
  u = _sortable(x).reshape(-1)
  lo, hi = u.min(), u.max()

  def body(_, lohi):
    lo, hi = lohi
    gap = hi - lo
    mid = lo + gap // 2 + gap % 2  # ceil midpoint without uint32 overflow
    ok = jnp.sum(u >= mid) >= k
    return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid - 1)

  lo, _ = jax.lax.fori_loop(0, 32, body, (lo, hi))
  return _unsortable(lo)


def vmf_score(z, *, eta=0.01, min_tau=0.1):
  """Stein score estimate with a von Mises–Fisher kernel (MVEB).

  For rows z_i of `z` [n, d] that are already unit-norm (not re-normalized
  here):
    S = z zᵀ;  τ = max(k-th largest entry of 1 − S over all n² entries,
                        k = ⌊n²/2⌋ (diagonal zeros included), min_tau)
    K = exp(S / τ);  g_i = (Σ_j K_ij) z_i / τ;  ŝ = −(K + ηI)⁻¹ g
  ŝ_i estimates ∇ log q(z_i), q the density of the embeddings. No gradient
  flows through the estimate (stop_gradient on z). Computed in float32
  whatever the input dtype; K + ηI is symmetric positive definite and is
  solved by Cholesky, never inverted. In float32 the factorization can fail
  (NaN) when K is extremely ill-conditioned (all z nearly equal, τ at
  min_tau): the train step's non-finite policy then drops the update, as
  the official code skips non-finite updates.

  Returns (ŝ [n, d] float32, τ scalar).
  """
  z = jax.lax.stop_gradient(z).astype(jnp.float32)
  n = z.shape[0]
  s_nn = z @ z.T
  tau = jnp.maximum(kth_largest(1.0 - s_nn, (n * n) // 2), min_tau)
  k_nn = jnp.exp(s_nn / tau)
  g_nd = k_nn.sum(axis=1, keepdims=True) * z / tau
  chol = jax.scipy.linalg.cho_factor(k_nn + eta * jnp.eye(n, dtype=z.dtype),
                                     lower=True)
  return -jax.scipy.linalg.cho_solve(chol, g_nd), tau
