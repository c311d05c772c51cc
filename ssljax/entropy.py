"""Matrix-based Rényi α-entropy (Sanchez Giraldo, Rao, Principe, "Measures
of entropy from data using infinitely divisible kernels", arXiv 1211.2459),
as float32 jnp kernels. Every entropy is in BITS (log base 2).

From a Gram matrix K (PSD, positive diagonal) of n samples:
  A_ij = K_ij / (n · sqrt(K_ii K_jj))          (normalized: tr A = 1)
  S_α(A) = log₂( Σ_i λ_i(A)^α ) / (1 − α)        α > 0, α ≠ 1
  S_1(A) = −Σ_i λ_i log₂ λ_i                    (von Neumann, the α → 1 limit)
  S_α(A, B) = S_α( A∘B / tr(A∘B) )              (∘: Hadamard product)
  I_α(A; B) = S_α(A) + S_α(B) − S_α(A, B)
  S_α(A | B) = S_α(A, B) − S_α(B)
Ranges: 0 ≤ S_α(A) ≤ log₂ n, with S(I/n) = log₂ n (all samples far apart)
and S(11ᵀ/n) = 0 (all samples equal); for Grams with non-negative
entries (the Gaussian's) max(S(A), S(B)) ≤ S(A, B) ≤ S(A) + S(B), hence
I ≥ 0.

Two evaluation paths:
  α = 2: tr(A²) = ‖A‖²_F, no eigendecomposition (O(n²)).
  other α: `eigvalsh` (O(n³)); eigenvalues ≤ 0 (round-off of a PSD
    matrix) are clipped to 0 and the rest renormalized to sum 1, as the
    authors' code (uk-cliplab/representation-itl) does; clipped eigenvalues
    get zero derivative, and 0^α, 0·log 0 never enter a derivative.
Gradients at repeated eigenvalues: the entropy is a spectral function
F(A) = g(λ(A)) with g symmetric, whose gradient U diag(∇g(λ)) Uᵀ (Lewis
1996) is unique even when eigenvalues repeat, because ∇g is equal within
an eigenspace. Only eigenvector derivatives carry the 1/(λ_i − λ_j) terms
that are NaN there (jax#2311). JAX's eigh derivative gives dλ_i = u_iᵀ dA
u_i and, when only eigenvalues are used, transposes just that branch, so
reverse mode yields exactly U diag(∇g) Uᵀ, forward mode stays finite too,
and no custom rule is needed (one would also disable forward mode:
jax.jvp, jax.hessian). tests/test_entropy.py checks the gradient on Grams
with repeated eigenvalues against float64 finite differences.

The deep-information-bottleneck literature uses α = 1.01 for a near-von-
Neumann entropy on the eigenvalue path; α = 1.0 exactly takes the limit.

Under `jax.jit` with the samples sharded over a mesh, the Gram and every
entropy are over the GLOBAL batch (XLA gathers what `eigh` needs).
"""

import jax
import jax.numpy as jnp

from ssljax import ops

BANDWIDTHS = ("median", "silverman")


def pairwise_sq_dists(x_nd):
  """float32 [n, n] of ‖x_i − x_j‖², exactly 0 on the diagonal."""
  x = x_nd.astype(jnp.float32)
  sq_n = jnp.sum(jnp.square(x), axis=-1)
  dot = jnp.matmul(x, x.T, precision=jax.lax.Precision.HIGHEST)
  d2 = jnp.maximum(sq_n[:, None] + sq_n[None, :] - 2.0 * dot, 0.0)
  # ‖x‖² + ‖y‖² − 2⟨x, y⟩ leaves round-off on the diagonal; K_ii must be 1.
  return jnp.where(jnp.eye(x.shape[0], dtype=bool), 0.0, d2)


def gram(x_nd, sigma):
  """Gaussian Gram matrix K_ij = exp(−‖x_i − x_j‖² / (2σ²)), float32 [n, n].

  Infinitely divisible, unit diagonal. Gradients flow to x (and σ)."""
  sigma = jnp.asarray(sigma, jnp.float32)
  return jnp.exp(-pairwise_sq_dists(x_nd) / (2.0 * jnp.square(sigma)))


def median_bandwidth(x_nd):
  """σ = the median pairwise distance of the n samples (Gretton et al.'s
  median heuristic): the ⌈m/2⌉-th largest of the m = n(n−1)/2 distances
  ‖x_i − x_j‖, i < j (no interpolation between the two middle ones).
  Exact, by bisection (`ops.kth_largest`), no sort. No gradient."""
  n = x_nd.shape[0]
  if n < 2:
    raise ValueError(f"The median bandwidth needs ≥ 2 samples; got {n}.")
  # Each pair appears twice in the symmetric matrix and the n zeros of the
  # diagonal sort below every pair: the m-th largest entry is pair ⌈m/2⌉.
  d2 = jax.lax.stop_gradient(pairwise_sq_dists(x_nd))
  return jnp.sqrt(ops.kth_largest(d2, n * (n - 1) // 2))


def silverman_bandwidth(x_nd):
  """Silverman's rule of thumb for a d-dimensional Gaussian kernel:
  σ = s · (4 / ((d + 2) n))^(1/(d + 4)), s = sqrt(mean_j Var_j) the root
  mean per-dimension variance (unbiased). For d = 1: the familiar
  s · (4/(3n))^(1/5). No gradient.

  Made for low dimension: in d dimensions typical pairwise distances are
  ≈ s·sqrt(2d) while the factor tends to 1, so for images (d ~ 10³) the
  Gram is ≈ I and every entropy ≈ log₂ n. Use "median" there."""
  x = jax.lax.stop_gradient(x_nd).astype(jnp.float32)
  n, d = x.shape
  if n < 2:
    raise ValueError(f"Silverman's bandwidth needs ≥ 2 samples; got {n}.")
  s = jnp.sqrt(jnp.mean(jnp.var(x, axis=0, ddof=1)))
  return s * (4.0 / ((d + 2) * n)) ** (1.0 / (d + 4))


def bandwidth(x_nd, rule, scale=1.0):
  """`scale` × the σ of `rule` (one of BANDWIDTHS) for samples x_nd."""
  rules = {"median": median_bandwidth, "silverman": silverman_bandwidth}
  if rule not in rules:
    raise ValueError(f"Unknown bandwidth rule {rule!r}; valid: "
                     f"{', '.join(BANDWIDTHS)}.")
  return scale * rules[rule](x_nd)


def normalize_gram(k_nn):
  """A = K_ij / (n sqrt(K_ii K_jj)), float32, trace 1."""
  k = k_nn.astype(jnp.float32)
  d = jnp.sqrt(jnp.diagonal(k))
  return k / (k.shape[0] * d[:, None] * d[None, :])


def _check_alpha(alpha):
  if not isinstance(alpha, (int, float)) or not alpha > 0:
    raise ValueError(f"alpha = {alpha!r}: the Rényi order must be a Python "
                     "number > 0 (1.0: von Neumann; 2.0: Frobenius path).")
  return float(alpha)


def _spectral_entropy(lam, alpha):
  """S_α of the eigenvalues `lam` (clipped at 0, renormalized), bits."""
  pos = lam > 0
  p = jnp.where(pos, lam, 0.0)
  s = jnp.sum(p)
  safe = jnp.where(pos, lam, 1.0)  # keeps 0^α and 0·log 0 out of gradients
  if alpha == 1.0:
    plogp = jnp.where(pos, safe * jnp.log2(safe), 0.0)
    return jnp.log2(s) - jnp.sum(plogp) / s
  power = jnp.where(pos, safe ** alpha, 0.0)
  return (jnp.log2(jnp.sum(power)) - alpha * jnp.log2(s)) / (1.0 - alpha)


def entropy_eigen(a_nn, alpha):
  """S_α(A) in bits from the eigenvalues of a normalized Gram A (float32),
  any α > 0 (a Python number); finite gradient when eigenvalues repeat."""
  lam = jnp.linalg.eigvalsh(a_nn.astype(jnp.float32))
  return _spectral_entropy(lam, _check_alpha(alpha))


def entropy_frobenius(a_nn):
  """S_2(A) = −log₂ ‖A‖²_F in bits, for a normalized Gram A (float32)."""
  return -jnp.log2(jnp.sum(jnp.square(a_nn.astype(jnp.float32))))


def _entropy_of_normalized(a_nn, alpha):
  if _check_alpha(alpha) == 2.0:
    return entropy_frobenius(a_nn)
  return entropy_eigen(a_nn, float(alpha))


def matrix_entropy(k_nn, alpha=2.0):
  """S_α(A) in bits, A the normalized Gram of k_nn [n, n] (PSD, positive
  diagonal; normalization is done here). α = 2: Frobenius path; other α:
  eigenvalue path; α = 1: von Neumann."""
  return _entropy_of_normalized(normalize_gram(k_nn), alpha)


def matrix_joint_entropy(k1_nn, k2_nn, alpha=2.0):
  """S_α(A, B) = S_α(A∘B / tr(A∘B)) in bits, A and B the normalized Grams of
  k1_nn and k2_nn (same samples, same order). Normalizing K1∘K2 gives the
  same matrix: its diagonal is K1_ii K2_ii."""
  return matrix_entropy(k1_nn.astype(jnp.float32) * k2_nn.astype(jnp.float32),
                        alpha)


def matrix_mutual_information(k1_nn, k2_nn, alpha=2.0):
  """I_α(A; B) = S_α(A) + S_α(B) − S_α(A, B) in bits (≥ 0)."""
  return (matrix_entropy(k1_nn, alpha) + matrix_entropy(k2_nn, alpha)
          - matrix_joint_entropy(k1_nn, k2_nn, alpha))


def matrix_conditional_entropy(k1_nn, k2_nn, alpha=2.0):
  """S_α(A | B) = S_α(A, B) − S_α(B) in bits, A of k1_nn, B of k2_nn."""
  return (matrix_joint_entropy(k1_nn, k2_nn, alpha)
          - matrix_entropy(k2_nn, alpha))
