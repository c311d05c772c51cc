"""A label-free, spectral measure of the global structure of an embedding.

Spectral global structure (SGS). For features x_1..x_n (a seeded subsample
of at most `max_points` rows; float32):

  d_ij   = ‖x_i − x_j‖,  σ² = median_{i<j} d_ij²   (the global scale)
  K_ij   = exp(−d_ij² / σ²)                          (dense: one component)
  P      = D⁻¹K,  D = diag(K·1);  M = D^{-1/2} K D^{-1/2} = Σ_l λ_l u_l u_lᵀ
  φ_l    = D^{-1/2} u_l                              (right eigenvectors of P)
  D_t(i, j)² = Σ_{l≥1} λ_l^{2t} (φ_l(i) − φ_l(j))²
             (the diffusion distance ‖P^t(i,·) − P^t(j,·)‖²_{1/π} up to the
             constant Σ_i D_ii; l = 0 is the trivial λ = 1 mode, constant
             in φ, left out because it only adds cancellation)
  ρ_t    = Spearman correlation over the pairs i < j of d_ij and D_t(i, j)
  SGS    = mean of ρ_t over t ∈ times (default 1, 2, 4, 8, 16)

D_t is the geometry of the embedding's own similarity graph seen at
diffusion time t: at small t every direction of the embedding counts; as t
grows only the slow modes of the diffusion survive (the large-scale cuts of
the graph). SGS ∈ [−1, 1] is high when the embedding's pairwise distances
are explained by those slow modes at every scale, i.e. when its geometry is
organized at large scale: clusters that themselves group into clusters
(nested classes) keep their between-cluster distances in the few slow modes.
It is low when clusters are scattered over many independent directions
(equidistant clusters: the picture of a spectral embedding of a graph with
only augmentation edges, VICReg's) or when there is no cluster at all (an
isotropic blob). It is invariant to rotations, translations and scalings of
the embedding (σ follows the scale; ranks ignore monotone maps of d).

Synthetic check (tests/evals/test_spectral.py): 16 Gaussian clusters nested
in 4 groups score clearly above the same clusters with their centroid
coordinates shuffled across clusters (group structure destroyed, marginal
spread kept), and above equidistant clusters.
Costs: an m×m eigendecomposition, and per t an m×m Gram and Spearman over
m(m−1)/2 pairs (m = min(n, max_points), default 1000): O(m³) time, O(m²)
memory.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ssljax.evals import geometry
from ssljax.evals import hierarchy

TIMES = (1, 2, 4, 8, 16)


@functools.partial(jax.jit, static_argnames="times")
def _sgs(x_nd, *, times):
  x_nd = jnp.asarray(x_nd, jnp.float32)
  n = x_nd.shape[0]
  d2 = geometry.pairwise_sq_distances(x_nd)
  iu = jnp.triu_indices(n, k=1)
  s2 = jnp.median(d2[iu])
  k = jnp.exp(-d2 / jnp.maximum(s2, jnp.finfo(jnp.float32).tiny))
  deg = k.sum(1)
  m = k / jnp.sqrt(deg[:, None] * deg[None])
  lam, u = jnp.linalg.eigh((m + m.T) / 2)  # ascending; the last is λ = 1
  phi = u[:, :-1] / jnp.sqrt(deg)[:, None]
  lam = jnp.maximum(lam[:-1], 0.0)  # K is PSD: negatives are rounding
  # λ^t / λ_max^t scales every D_t(i, j) alike (ranks unchanged) and keeps
  # the slowest mode at weight 1: λ^2t alone underflows float32 at t = 16.
  lam = lam / jnp.maximum(lam.max(), jnp.finfo(jnp.float32).tiny)
  # Ranks of d² are those of d: no square root needed.
  return jnp.stack([hierarchy.spearman(
      d2[iu], geometry.pairwise_sq_distances(phi * lam ** t)[iu])
                    for t in times])


def spectral_global_structure(x, *, times=TIMES, max_points=1000, seed=0):
  """SGS of the rows of x (module docstring). Returns {"sgs": mean over
  times, "sgs_t<t>": ρ_t for each t, "points": rows used}. NaN for a
  collapsed embedding (all distances equal: no ranks to correlate)."""
  x = np.asarray(x, np.float32)
  if len(x) < 3:
    raise ValueError(f"SGS needs at least 3 points; got {len(x)}.")
  if len(x) > max_points:
    keep = np.sort(np.random.default_rng(seed).choice(len(x), max_points,
                                                      replace=False))
    x = x[keep]
  rho = np.asarray(_sgs(x, times=tuple(times)))
  out = {"sgs": float(rho.mean()), "points": len(x)}
  out.update({f"sgs_t{t}": float(r) for t, r in zip(times, rho)})
  return out
