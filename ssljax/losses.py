"""SSL losses as jnp kernels: float32 inside, whatever the model's dtype.

Every statistic is over the batch axis of the arrays given. Under `jax.jit`
with the batch sharded over a mesh, that is the GLOBAL batch: XLA inserts the
cross-device reductions (the all-gather of the official PyTorch code).
"""

import jax.numpy as jnp


def off_diagonal_sq_sum(zc_nd):
  """Σ_{p≠q} C_pq² for C = Zcᵀ Zc / (n−1), Zc already centred.

  ‖C‖²_F = ‖Zcᵀ Zc‖²_F/(n−1)² = ‖Zc Zcᵀ‖²_F/(n−1)²: when n < d the n×n Gram
  (2n²d FLOPs) replaces the d×d covariance (2nd² FLOPs). The diagonal is the
  per-dimension variance, subtracted in closed form.
  """
  n, d = zc_nd.shape
  if n < d:
    g_nn = zc_nd @ zc_nd.T
  else:
    g_nn = zc_nd.T @ zc_nd  # d×d
  frob = jnp.sum(jnp.square(g_nn)) / (n - 1) ** 2
  var_d = jnp.sum(jnp.square(zc_nd), axis=0) / (n - 1)
  return frob - jnp.sum(jnp.square(var_d))


def vicreg(z1, z2, *, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0,
           eps=1e-4):
  """VICReg loss (Bardes et al., ICLR 2022), facebookresearch/vicreg conventions.

    repr = mean over n·d of (z1 − z2)²                     (F.mse_loss)
    std_j = sqrt(Var_j + eps), Var unbiased (n−1), per view, after centring
    std  = mean_j relu(1 − std1_j)/2 + mean_j relu(1 − std2_j)/2   (halved)
    cov  = Σ_{p≠q} C1_pq² / d + Σ_{p≠q} C2_pq² / d,  C = Zcᵀ Zc / (n−1)
    loss = sim_coeff·repr + std_coeff·std + cov_coeff·cov

  The paper writes the std term without the 1/2 and says λ=μ=25, ν=1; the
  official code (which produced the 73.2% result) halves it, as here.

  Args:
    z1, z2: [n, d] embeddings of the two views (any float dtype).
  Returns:
    (loss, metrics) with float32 scalars: loss, repr_loss, std_loss,
    cov_loss, and `std` (mean per-dimension std, a collapse monitor).
  """
  z1 = z1.astype(jnp.float32)
  z2 = z2.astype(jnp.float32)
  n, d = z1.shape
  repr_loss = jnp.mean(jnp.square(z1 - z2))
  z1 = z1 - z1.mean(axis=0)
  z2 = z2 - z2.mean(axis=0)
  std1 = jnp.sqrt(jnp.sum(jnp.square(z1), axis=0) / (n - 1) + eps)
  std2 = jnp.sqrt(jnp.sum(jnp.square(z2), axis=0) / (n - 1) + eps)
  std_loss = (jnp.mean(jnp.maximum(1 - std1, 0)) / 2
              + jnp.mean(jnp.maximum(1 - std2, 0)) / 2)
  cov_loss = (off_diagonal_sq_sum(z1) + off_diagonal_sq_sum(z2)) / d
  loss = sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss
  metrics = {"loss": loss, "repr_loss": repr_loss, "std_loss": std_loss,
             "cov_loss": cov_loss, "std": (std1.mean() + std2.mean()) / 2}
  return loss, metrics
