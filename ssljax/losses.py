"""SSL losses as jnp kernels: float32 inside, whatever the model's dtype.

Float32 or wider: float64 inputs stay float64 (`ops.f32`), so the recipe-
parity tests can compare a whole step with the official code in float64.

Every statistic is over the batch axis of the arrays given. Under `jax.jit`
with the batch sharded over a mesh, that is the GLOBAL batch: XLA inserts the
cross-device reductions (the all-gather of the official PyTorch code).
"""

import jax
import jax.numpy as jnp

from ssljax import ops
from ssljax.ops import l2_normalize


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
  z1 = ops.f32(z1)
  z2 = ops.f32(z2)
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


def barlow_twins(z1, z2, *, lambd=0.0051, eps=1e-5):
  """Barlow Twins loss (Zbontar et al., ICML 2021), facebookresearch/
  barlowtwins conventions:

    ẑ = (z − mean) / sqrt(Var + eps) per dimension and view, Var BIASED
        (1/n; BatchNorm1d(affine=False) in training mode, synced over the
        global batch), eps 1e-5
    C = ẑ1ᵀ ẑ2 / n                       (d×d cross-correlation)
    loss = Σ_i (1 − C_ii)² + lambd · Σ_{i≠j} C_ij²

  Summed, not averaged, over the d² entries: the loss grows with d, and
  lambd = 0.0051 is the official value for d = 8192.

  Returns (loss, metrics) with float32 scalars: loss, on_diag, off_diag
  (the two sums before lambd) and `corr_diag` (mean C_ii: 1 when the views
  agree in every dimension).
  """
  def bn(z):
    z = ops.f32(z)
    z = z - z.mean(axis=0)
    return z * jax.lax.rsqrt(jnp.mean(jnp.square(z), axis=0) + eps)
  n = z1.shape[0]
  c = bn(z1).T @ bn(z2) / n
  diag = jnp.diagonal(c)
  on_diag = jnp.sum(jnp.square(1 - diag))
  off_diag = jnp.sum(jnp.square(c)) - jnp.sum(jnp.square(diag))
  loss = on_diag + lambd * off_diag
  return loss, {"loss": loss, "on_diag": on_diag, "off_diag": off_diag,
                "corr_diag": jnp.mean(diag)}


def vmf_scores(z_nd, *, eta, min_tau, scope, mesh):
  """ops.vmf_score over the global batch (scope "global") or independently
  on each device's shard of the batch (scope "per_device").
  Returns (ŝ [n, d], τ [#estimates])."""
  if scope == "global" or mesh is None or mesh.size == 1:
    s_nd, tau = ops.vmf_score(z_nd, eta=eta, min_tau=min_tau)
    return s_nd, tau[None]
  if scope != "per_device":
    raise ValueError(f"Unknown score scope {scope!r}; valid: per_device, "
                     "global.")
  def local(z):
    s_nd, tau = ops.vmf_score(z, eta=eta, min_tau=min_tau)
    return s_nd, tau[None]

  spec = ops.batch_spec(mesh)
  return jax.shard_map(local, mesh=mesh, in_specs=spec,
                       out_specs=(spec, spec), check_vma=False)(z_nd)


def mveb(online_views, target1, target2, *, lambd=0.01, eta=0.01,
         min_tau=0.1, scope="per_device", mesh=None):
  """MVEB loss (Wen et al., TPAMI 2024), wlj6816/MVEB conventions.

  Inputs are already L2-normalized and are NOT re-normalized here:
  `online_views` is a sequence of V arrays [n, d] (the first two are the
  global views, the rest local crops); target1 / target2 are the EMA
  network's outputs on the two global views.

    A = [ mean_i⟨z1_i, t2_i⟩ + mean_i⟨z2_i, t1_i⟩
          + Σ_{v≥3} mean_i⟨zv_i, (t1_i + t2_i)/2⟩ ] / V
        (the mean of the two targets is not re-normalized)
    E_v = mean_i ⟨sg(−ŝ_i), zv_i⟩, ŝ = ops.vmf_score(zv), so ∂E_v/∂zv_i =
        −ŝ_i/n: an estimate of the gradient of the entropy of the view's
        embedding distribution (only the gradient is meaningful: E's value
        is a surrogate, not an entropy)
    loss = −A − λ · mean_v E_v

  scope: where the score is estimated. "per_device" (the official
  behaviour, default): each device estimates on its own shard of the batch
  (4096 / 32 devices = 128 samples per estimate in the paper), so τ, K and
  the solve see only local samples and the estimate depends on the device
  count. "global": one estimate over the whole batch, independent of the
  device count (an n×n solve: memory and time grow as n², n³). The mean
  over samples in E is over the global batch either way, as in the
  official code where DDP averages the per-device gradients. `mesh` is the
  device mesh; the batch is split over all its axes (None: global).

  Returns (loss, metrics): loss, align (A), entropy (mean E), tau_v<k>
  (mean τ of view k over estimates) and resultant_length (‖mean_i z_i‖
  averaged over views: 1 for a collapsed batch, ≈ 1/√n for uniform).
  """
  zs = [ops.f32(z) for z in online_views]
  t1 = ops.f32(target1)
  t2 = ops.f32(target2)
  v = len(zs)
  if v < 2:
    raise ValueError(f"MVEB needs at least the 2 global views; got {v}.")
  dot = lambda a, b: jnp.mean(jnp.sum(a * b, axis=-1))
  t_mean = (t1 + t2) / 2
  align = (dot(zs[0], t2) + dot(zs[1], t1)
           + sum(dot(z, t_mean) for z in zs[2:])) / v
  metrics = {}
  entropies = []
  for i, z in enumerate(zs):
    s_nd, tau = vmf_scores(z, eta=eta, min_tau=min_tau, scope=scope,
                           mesh=mesh)
    entropies.append(dot(jax.lax.stop_gradient(-s_nd), z))
    metrics[f"tau_v{i + 1}"] = tau.mean()
  entropy = sum(entropies) / v
  loss = -align - lambd * entropy
  metrics.update(loss=loss, align=align, entropy=entropy,
                 resultant_length=sum(
                     jnp.linalg.norm(jax.lax.stop_gradient(z).mean(0))
                     for z in zs) / v)
  return loss, metrics


def byol(p1, p2, t1, t2):
  """BYOL loss (Grill et al., NeurIPS 2020), deepmind-research/byol
  conventions: for each direction 2 − 2·cos(p, sg(t')) per sample, i.e. the
  MSE of the L2-normalized vectors; the two directions (p1↔t2, p2↔t1) are
  SUMMED and the result averaged over the batch (range [0, 8]).
  p = online predictor outputs, t = target projector outputs (EMA net)."""
  pn1 = l2_normalize(ops.f32(p1))
  pn2 = l2_normalize(ops.f32(p2))
  tn1 = jax.lax.stop_gradient(l2_normalize(ops.f32(t1)))
  tn2 = jax.lax.stop_gradient(l2_normalize(ops.f32(t2)))
  l12 = 2 - 2 * jnp.sum(pn1 * tn2, axis=-1)
  l21 = 2 - 2 * jnp.sum(pn2 * tn1, axis=-1)
  loss = jnp.mean(l12 + l21)
  return loss, {"loss": loss, "cosine": 1 - loss / 4}


def nt_xent(z1, z2, *, temperature=0.1):
  """SimCLR's NT-Xent (Chen et al., ICML 2020), google-research/simclr
  conventions: z L2-normalized; for each of the 2N embeddings the positive
  is the other view of the same image and the negatives are the other
  2N − 2 embeddings of the GLOBAL batch (self-similarity masked); softmax
  cross-entropy at `temperature`. As in the official code the loss is
  loss_a + loss_b, the SUM of the two directions' batch means (= 2 × the
  mean over the 2N anchors; some reimplementations report the mean).
  Returns (loss, metrics) with contrastive top-1 accuracy."""
  z = l2_normalize(ops.f32(jnp.concatenate([z1, z2])))
  n = z1.shape[0]
  logits = z @ z.T / temperature
  logits = jnp.where(jnp.eye(2 * n, dtype=bool), -jnp.inf, logits)
  pos = jnp.concatenate([jnp.arange(n, 2 * n), jnp.arange(n)])
  logp = jax.nn.log_softmax(logits, axis=-1)
  loss = -2.0 * jnp.mean(logp[jnp.arange(2 * n), pos])
  acc = jnp.mean(logits.argmax(-1) == pos)
  return loss, {"loss": loss, "contrast_accuracy": acc}


def nnclr(nn1, p1, nn2, p2, *, temperature=0.1):
  """NNCLR's loss (Dwibedi et al., ICCV 2021), the paper's Eq. 2 as solo-
  learn's `nnclr_loss_func` computes it, symmetrized:

    L = CE(n̂1 p̂2ᵀ / τ, I) / 2 + CE(n̂2 p̂1ᵀ / τ, I) / 2

  n̂v: the L2-normalized nearest neighbour of view v's projection in the
  support set (no gradient reaches it: it is a stored embedding), p̂v: the
  L2-normalized prediction of view v; row i's positive is column i, its
  negatives the other predictions of the GLOBAL batch (as solo-learn,
  which gathers the predictions from every device, and the paper).
  Returns (loss, metrics) with the contrastive top-1 accuracy.
  """
  def one(nn_nd, p_nd):
    a = l2_normalize(ops.f32(jax.lax.stop_gradient(nn_nd)))
    b = l2_normalize(ops.f32(p_nd))
    logits = a @ b.T / temperature
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.diagonal(logp)), jnp.mean(
        logits.argmax(-1) == jnp.arange(len(a)))
  l1, a1 = one(nn1, p2)
  l2, a2 = one(nn2, p1)
  loss = (l1 + l2) / 2
  return loss, {"loss": loss, "contrast_accuracy": (a1 + a2) / 2}


def sinkhorn(scores_nk, *, epsilon=0.05, iterations=3):
  """SwAV's equipartitioned soft assignments (facebookresearch/swav
  `distributed_sinkhorn`): Q = exp(scores / ε)ᵀ, normalized to sum 1, then
  `iterations` times rows (prototypes) to 1/K and columns (samples) to 1/B;
  returns B·Q transposed, [n, K] rows summing to 1. Every sum is over the
  GLOBAL batch (the official all-reduces them). No gradient (torch.no_grad
  in the official code). Float32; the official exponentiates without
  subtracting a maximum, as here (ε = 0.05 keeps exp(1/ε) finite in
  float32 for unit-norm scores)."""
  q = jnp.exp(ops.f32(jax.lax.stop_gradient(scores_nk))
              / epsilon).T
  k, b = q.shape
  q = q / jnp.sum(q)
  for _ in range(iterations):
    q = q / jnp.sum(q, axis=1, keepdims=True) / k
    q = q / jnp.sum(q, axis=0, keepdims=True) / b
  return (q * b).T


def swav(scores, *, num_assign=2, temperature=0.1, epsilon=0.05,
         iterations=3, queue_scores=None):
  """SwAV's swapped prediction (Caron et al., NeurIPS 2020), the official
  loop: for each of the first `num_assign` views (the global crops), codes
  q = sinkhorn(its scores); every OTHER view v predicts them, −mean_n
  Σ_k q log softmax(scores_v / T); averaged over the V − 1 other views,
  then over the assigned views. `scores`: a list of [n, K] prototype
  scores per view (global views first). `queue_scores` (optional): per
  assigned view, the [L, K] scores of its queue of past embeddings; the
  Sinkhorn then runs over queue + batch and the batch keeps its last n
  rows of codes (the official `torch.cat((queue scores, out))[-bs:]`)."""
  total = 0.0
  for i in range(num_assign):
    s_i = scores[i]
    if queue_scores is not None:
      s_i = jnp.concatenate([queue_scores[i].astype(s_i.dtype), s_i])
    q = sinkhorn(s_i, epsilon=epsilon, iterations=iterations)
    q = q[-scores[i].shape[0]:]
    sub = 0.0
    for v, s in enumerate(scores):
      if v != i:
        logp = jax.nn.log_softmax(ops.f32(s) / temperature, -1)
        sub = sub - jnp.mean(jnp.sum(q * logp, axis=1))
    total = total + sub / (len(scores) - 1)
  loss = total / num_assign
  return loss, {"loss": loss}


def dino(student_views, teacher_globals, center, *, student_temp=0.1,
         teacher_temp=0.04, center_momentum=0.9):
  """DINO's loss and center update (Caron et al., ICCV 2021),
  facebookresearch/dino `DINOLoss`: teacher codes q = softmax((t − c) /
  T_t) of the global views (no gradient); every student view v ≠ the
  teacher's view predicts them, Σ_k −q log softmax(s_v / T_s), batch mean,
  averaged over the (teacher view, student view) pairs. The center then
  moves to m·c + (1 − m)·mean of the teacher outputs of this GLOBAL batch
  (both views; the official all-reduces the sum), computed after the loss
  used the old one. Returns (loss, metrics, new center [K])."""
  f32 = ops.f32
  teacher = [jax.lax.stop_gradient(f32(t)) for t in teacher_globals]
  qs = [jax.nn.softmax((t - center) / teacher_temp, axis=-1) for t in teacher]
  total, terms = 0.0, 0
  for iq, q in enumerate(qs):
    for v, s in enumerate(student_views):
      if v == iq:
        continue
      logp = jax.nn.log_softmax(f32(s) / student_temp, axis=-1)
      total = total + jnp.mean(jnp.sum(-q * logp, axis=-1))
      terms += 1
  loss = total / terms
  batch_center = jnp.mean(jnp.concatenate(teacher), axis=0)
  new_center = center * center_momentum + batch_center * (1 - center_momentum)
  entropy = jnp.mean(jnp.sum(-qs[0] * jnp.log(qs[0] + 1e-12), axis=-1))
  return loss, {"loss": loss, "teacher_entropy": entropy}, new_center
