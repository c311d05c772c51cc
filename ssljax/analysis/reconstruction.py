"""Learning by reconstruction (Balestriero & LeCun, ICML 2024): the analyses.

All jnp, float32 unless the input is float64, and jit-able; D = 3·32·32 =
3072 runs in seconds on a CPU. Conventions (the paper's, and its public
code where the paper is silent):

PCA protocol (`pca_fit`, `pca_projection`, `project`):
  each image is divided by its own std over all of its values (+1e-6),
  then the train mean is subtracted; the eigendecomposition of XᵀX gives
  the directions, eigenvalues normalized to sum to 1. "top p" keeps the
  leading directions until their cumulative share reaches p (the first k
  with share ≥ p); "bottom" is the rest. A projected image x V Vᵀ is
  re-normalized by its own std, as the inputs were, before a classifier
  sees it.

Optimal linear auto-encoder x̂ = Wᵀ Vᵀ x̃ (`linear_ae_closed_form`), X the
centred D×N data: V* = the top-K generalized eigenvectors of
  (M₁Xᵀ)(X M₁ᵀ) v = λ M₂ v,   W* = (V*ᵀ M₂ V*)⁻¹ V*ᵀ M₁ Xᵀ,
  clean:     M₁ = X,        M₂ = X Xᵀ
  Gaussian:  M₁ = X,        M₂ = X Xᵀ + N σ² I
  masking:   M₁ = (1−p) X,  M₂ = (X Xᵀ) ⊙ M, M_ij = 1−p when i and j lie
             in the same patch (a patch spans all channels of its pixels),
             (1−p)² otherwise (patches dropped independently w.p. p).
             Patches come from image_shape (C, H, W): patch_size×patch_size
             pixels, all C channels. Without image_shape every coordinate
             is masked independently (M = (1−p)² off the diagonal, 1−p on
             it), the same as image_shape = (1, D, 1) with patch_size 1;
             patch_size > 1 then needs image_shape. Note (D, 1, 1) is ONE
             pixel of D channels, i.e. a single patch: M = (1−p) everywhere,
             M₂ ∝ X Xᵀ, the PCA subspace.
Solved as Cholesky M₂ = L Lᵀ, symmetric eigendecomposition of
L⁻¹ A L⁻ᵀ, V = L⁻ᵀ U (triangular solves, no inverse). M₂ is singular for
rank-deficient data (N ≤ D, or pixels that never vary, like MNIST's
padding), where the Cholesky factor does not exist; `ridge` adds
ε·tr(M₂)·I (default ε = 1e-5, so the condition number stays below 1e5,
which float32 Cholesky handles). For clean and Gaussian corruption this
changes nothing but the eigenvalues (A and M₂ are functions of X Xᵀ; the
order λ²/(λ + δ) is monotone); for masking it is a small perturbation; the
null-space directions of X (eigenvalue ~0) come last. `expected_loss` is
the corruption-averaged loss the closed form minimizes:
  (tr XXᵀ − 2 tr(A M₁Xᵀ) + tr(AᵀA M₂)) / N,  A = Wᵀ Vᵀ.

Task alignment (`alignment`): Q = orthonormalized columns of Xᵀ V (N×K, in
the order of V's columns), Y one-hot, a_k = ‖Y Yᵀ q_k‖² / N²,
alignment(K) = 100 · sqrt(Σ_{k≤K} a_k) / sqrt(Σ_k a_k), the last sum over
an orthonormal basis of the column space of X, so that curves of
different V share one denominator and reach 100 once V spans that space.
X is centred and each dimension standardized (as the public code; it also
adds 0.001·std noise, which we do not). Rank deficiency (N ≤ D, constant
pixels) is handled by counting only directions that add to the span
(|R_kk| > 1e-3 for unit columns of X V) and taking the denominator from the SVD of X; for
full-rank X and V spanning it this is the paper's formula.
"""

import functools

import jax
import jax.numpy as jnp


def standardize_images(x_n):
  """Each image (row, or [n, ...] flattened) divided by its own std."""
  x_nd = x_n.reshape(x_n.shape[0], -1)
  return x_nd / (jnp.std(x_nd, axis=1, keepdims=True) + 1e-6)


@jax.jit
def pca_fit(x_nd):
  """(mean_d, share_d, v_dd): train mean after per-image standardization,
  eigenvalue shares in decreasing order (sum 1), eigenvectors as columns."""
  x = standardize_images(x_nd)
  mean_d = x.mean(axis=0)
  xc = x - mean_d
  evals, evecs = jnp.linalg.eigh(xc.T @ xc)
  evals, evecs = evals[::-1], evecs[:, ::-1]
  evals = jnp.maximum(evals, 0)
  return mean_d, evals / evals.sum(), evecs


def num_top(share_d, p):
  """The number of leading directions whose cumulative share first
  reaches p (at least 1, at most D − 1 so that "bottom" is not empty)."""
  k = int(jnp.searchsorted(jnp.cumsum(share_d), p)) + 1
  return min(max(k, 1), share_d.shape[0] - 1)


def pca_projection(x_train_nd, p):
  """{"mean": [D], "top": V_top [D, k], "bottom": V_bottom [D, D − k],
  "k": k} for the top subspace holding a share p of the variance."""
  mean_d, share_d, v_dd = pca_fit(x_train_nd)
  k = num_top(share_d, p)
  return {"mean": mean_d, "top": v_dd[:, :k], "bottom": v_dd[:, k:], "k": k}


@jax.jit
def project(x_n, mean_d, v_dk):
  """Images [n, ...] standardized, centred, projected onto span(v_dk) and
  re-standardized per image; returns [n, ...] of the input's shape."""
  x = standardize_images(x_n) - mean_d
  y = (x @ v_dk) @ v_dk.T
  return standardize_images(y).reshape(x_n.shape)


def mask_matrix(mask_prob, patch_size, image_shape):
  """M [D, D] for images of shape (C, H, W), flattened C-major: 1 − p
  within a patch (all channels of its pixels), (1 − p)² across patches."""
  c, h, w = image_shape
  rows = jnp.arange(h)[:, None] // patch_size
  cols = jnp.arange(w)[None, :] // patch_size
  patch = rows * ((w + patch_size - 1) // patch_size) + cols
  patch_d = jnp.broadcast_to(patch, (c, h, w)).reshape(-1)
  same = patch_d[:, None] == patch_d[None, :]
  keep = 1.0 - mask_prob
  return jnp.where(same, keep, keep * keep)


def corruption_moments(x_dn, *, noise_std=0.0, mask_prob=0.0, patch_size=1,
                       image_shape=None):
  """(M₁Xᵀ [D, D], M₂ [D, D]) of the module docstring, X centred.

  image_shape (C, H, W) with C·H·W = D defines the patches; None masks
  every coordinate independently (≡ image_shape (1, D, 1), patch_size 1)
  and then requires patch_size == 1."""
  d, n = x_dn.shape
  xxt = x_dn @ x_dn.T
  # p = 0 makes M all ones (clean); both corruptions at once: masking,
  # then independent noise on every coordinate.
  if image_shape is None:
    if patch_size != 1:
      raise ValueError(
          f"patch_size={patch_size} needs image_shape (C, H, W); without it "
          "every coordinate is masked on its own")
    # One channel, D rows, width 1: every coordinate its own 1×1 patch.
    # (Not (D, 1, 1): that is one pixel of D channels, a single patch.)
    image_shape = (1, d, 1)
  if image_shape[0] * image_shape[1] * image_shape[2] != d:
    raise ValueError(f"image_shape {image_shape} does not have D = {d} "
                     "values")
  m = mask_matrix(mask_prob, patch_size, image_shape).astype(x_dn.dtype)
  return ((1.0 - mask_prob) * xxt,
          xxt * m + n * noise_std ** 2 * jnp.eye(d, dtype=x_dn.dtype))


@functools.partial(jax.jit, static_argnames=("k", "patch_size",
                                             "image_shape"))
def linear_ae_closed_form(x_dn, k, *, noise_std=0.0, mask_prob=0.0,
                          patch_size=1, image_shape=None, ridge=1e-5):
  """(v_dk, w_kd) of the optimal linear (denoising / masking) auto-encoder
  x̂ = Wᵀ Vᵀ x̃ for data x_dn (D×N, centred here), in decreasing order of
  generalized eigenvalue. image_shape (C, H, W), flattened C-major,
  defines the patches for masking (patch_size×patch_size pixels, all
  channels); default None: every coordinate masked independently, as
  image_shape (1, D, 1) — patch_size must then be 1. `ridge`: the module
  docstring (0 for the exact problem when M₂ is positive definite)."""
  x_dn = x_dn - x_dn.mean(axis=1, keepdims=True)
  m1xt, m2 = corruption_moments(x_dn, noise_std=noise_std,
                                mask_prob=mask_prob, patch_size=patch_size,
                                image_shape=image_shape)
  a = m1xt @ m1xt.T  # (M₁Xᵀ)(X M₁ᵀ)
  d = m2.shape[0]
  m2 = m2 + ridge * jnp.trace(m2) * jnp.eye(d, dtype=m2.dtype)
  l = jnp.linalg.cholesky(m2)
  tri = functools.partial(jax.scipy.linalg.solve_triangular, lower=True)
  c = tri(l, tri(l, a).T).T  # L⁻¹ A L⁻ᵀ
  c = (c + c.T) / 2
  evals, u = jnp.linalg.eigh(c)
  u_dk = u[:, ::-1][:, :k]
  v_dk = jax.scipy.linalg.solve_triangular(l.T, u_dk, lower=False)
  g = jax.scipy.linalg.cho_factor(v_dk.T @ m2 @ v_dk)
  w_kd = jax.scipy.linalg.cho_solve(g, v_dk.T @ m1xt)
  return v_dk, w_kd


def expected_loss(x_dn, v_dk, w_kd, *, noise_std=0.0, mask_prob=0.0,
                  patch_size=1, image_shape=None):
  """Corruption-averaged squared error of x̂ = Wᵀ Vᵀ x̃ per sample."""
  x_dn = x_dn - x_dn.mean(axis=1, keepdims=True)
  m1xt, m2 = corruption_moments(x_dn, noise_std=noise_std,
                                mask_prob=mask_prob, patch_size=patch_size,
                                image_shape=image_shape)
  a_dd = w_kd.T @ v_dk.T
  total = (jnp.sum(x_dn * x_dn) - 2 * jnp.trace(a_dd @ m1xt)
           + jnp.sum((a_dd.T @ a_dd) * m2))
  return total / x_dn.shape[1]


def alignment(x_nd, y_n, v_dk, num_classes=None):
  """Cumulative task alignment [K] (percent) of the directions v_dk, in
  their order, with the integer labels y_n (module docstring)."""
  if num_classes is None:
    num_classes = int(jnp.max(y_n)) + 1
  return _alignment(x_nd, y_n, v_dk, num_classes)


@functools.partial(jax.jit, static_argnames="num_classes")
def _alignment(x_nd, y_n, v_dk, num_classes):
  x = x_nd - x_nd.mean(axis=0)
  x = x / (x.std(axis=0) + 1e-6)
  xv = x @ v_dk
  # Unit columns: span(first k columns) is unchanged, and |R_kk| becomes
  # the distance of column k from the span of the earlier ones.
  xv = xv / (jnp.linalg.norm(xv, axis=0) + 1e-30)
  q_nk, r_kk = jnp.linalg.qr(xv)
  y_nc = jax.nn.one_hot(y_n, num_classes, dtype=x.dtype)
  n = x.shape[0]
  energy = lambda q: jnp.sum(jnp.square(y_nc @ (y_nc.T @ q)), axis=0) / n**2
  # A direction that adds nothing new to span(X V) (|R_kk| ~ 0: K > rank,
  # or a null direction of X) gives QR an arbitrary column; it counts 0.
  a_k = jnp.where(jnp.abs(jnp.diagonal(r_kk)) > 1e-3, energy(q_nk), 0.0)
  # The total: the label energy in the centred column space of X.
  u, sv, _ = jnp.linalg.svd(x, full_matrices=False)
  total = jnp.sum(jnp.where(sv > 1e-4 * sv[0], energy(u), 0.0))
  return 100.0 * jnp.sqrt(jnp.cumsum(a_k)) / jnp.sqrt(total)
