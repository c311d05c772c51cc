"""Numerical kernels shared by losses: selection, the vMF score, random walks.

  kth_largest  exact k-th largest entry of an array by bisection on the
               float32 bit pattern: 32 counting passes, no sort
  vmf_score    Stein score estimate ŝ ≈ ∇ log q(z) with a von Mises–Fisher
               kernel, for unit-norm rows z (MVEB)
  l2_normalize rows to unit norm (zero rows stay zero)
  f32          cast to float32, or keep a wider float (float64 stays)
  affinity_graph, random_walk_partners
               kNN similarity graph over a batch and a partner for every
               row drawn from a t-step random walk on it (SAG-VICReg)
"""

import jax
import jax.numpy as jnp


def f32(x):
  """x as float32, or as it is when wider: losses compute in float32 under
  bfloat16 models and in float64 when the model is float64 (the
  recipe-parity tests compare steps with the official code in float64)."""
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def l2_normalize(x):
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _uint(dtype):
  """(unsigned type, bits) of a float32 or float64 dtype."""
  return (jnp.uint64, 64) if dtype == jnp.float64 else (jnp.uint32, 32)


def _sortable(x):
  """float32 (float64) -> uint32 (uint64) whose unsigned order is the
  float order."""
  u, bits = _uint(x.dtype)
  b = jax.lax.bitcast_convert_type(x, u)
  sign = u(1) << u(bits - 1)
  return jnp.where(b >> (bits - 1) == 1, ~b, b | sign)


def _unsortable(u, dtype):
  ut, bits = _uint(dtype)
  sign = ut(1) << ut(bits - 1)
  b = jnp.where(u >> (bits - 1) == 1, u & ~sign, ~u)
  return jax.lax.bitcast_convert_type(b, dtype)


def kth_largest(x, k):
  """Exact k-th largest (1-based) of all entries of x (no NaN), in float32
  (in float64 when x is: the recipe-parity tests).

  The answer is the largest t with #{x ≥ t} ≥ k. Bisection over the 2³²
  ordered bit patterns takes 32 passes of one comparison + count each
  (64 in float64): O(32·N) work and O(N) memory, where a sort of N = n²
  entries costs O(N log N) with a large constant (and top_k with k = N/2
  is a sort).
  """
  x = f32(x)
  _, bits = _uint(x.dtype)
  u = _sortable(x).reshape(-1)
  lo, hi = u.min(), u.max()

  def body(_, lohi):
    lo, hi = lohi
    gap = hi - lo
    mid = lo + gap // 2 + gap % 2  # ceil midpoint without overflow
    ok = jnp.sum(u >= mid) >= k
    return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid - 1)

  lo, _ = jax.lax.fori_loop(0, bits, body, (lo, hi))
  return _unsortable(lo, x.dtype)


def vmf_score(z, *, eta=0.01, min_tau=0.1):
  """Stein score estimate with a von Mises–Fisher kernel (MVEB).

  For rows z_i of `z` [n, d] that are already unit-norm (not re-normalized
  here):
    S = z zᵀ;  τ = max(k-th largest entry of 1 − S over all n² entries,
                        k = ⌊n²/2⌋ (diagonal zeros included), min_tau)
    K = exp(S / τ);  g_i = (Σ_j K_ij) z_i / τ;  ŝ = −(K + ηI)⁻¹ g
  ŝ_i estimates ∇ log q(z_i), q the density of the embeddings. No gradient
  flows through the estimate (stop_gradient on z). Computed in float32
  whatever the input dtype (float64 for float64 input: `f32`); K + ηI is symmetric positive definite and is
  solved by Cholesky, never inverted. g = diag(K1/τ) z, so when n < d the
  solve takes the n columns of diag(K1/τ) instead of the d of g and one
  matmul with z follows: ŝ = −[(K + ηI)⁻¹ diag(K1/τ)] z, 2n³ + 2n²d
  instead of 4n²d flops in the solves (n = 1024, d = 2048, forward +
  backward on 2 CPU cores: 79 vs 99 ms; d = 8192: 173 vs 296 ms; equal to
  float32 rounding, ~1e-6 relative). In float32 the factorization can fail
  (NaN) when K is extremely ill-conditioned (all z nearly equal, τ at
  min_tau): the train step's non-finite policy then drops the update, as
  the official code skips non-finite updates.

  Returns (ŝ [n, d] float32 (float64), τ scalar).
  """
  z = f32(jax.lax.stop_gradient(z))
  n = z.shape[0]
  s_nn = z @ z.T
  tau = jnp.maximum(kth_largest(1.0 - s_nn, (n * n) // 2), min_tau)
  k_nn = jnp.exp(s_nn / tau)
  w_n = k_nn.sum(axis=1) / tau
  chol = jax.scipy.linalg.cho_factor(k_nn + eta * jnp.eye(n, dtype=z.dtype),
                                     lower=True)
  if n < z.shape[1]:
    return -jax.scipy.linalg.cho_solve(chol, jnp.diag(w_n)) @ z, tau
  return -jax.scipy.linalg.cho_solve(chol, w_n[:, None] * z), tau


# ----------------------------------------------------------------------------
# Batch similarity graph and random-walk partners (SAG-VICReg).
# ----------------------------------------------------------------------------
AFFINITIES = ("gaussian", "self_tuning", "cosine")
SAMPLERS = ("walk", "power")


def check_walk_args(n=None, *, num_neighbors=10, steps=1, affinity="gaussian",
                    scale_k=None, num_views=2, aug_weight=1.0,
                    sampler="walk"):
  """Validates the graph / walk arguments (n: batch rows, None if not yet
  known) and returns scale_k resolved; errors name the valid values."""
  if affinity not in AFFINITIES:
    raise ValueError(f"Unknown affinity {affinity!r}; valid: "
                     f"{', '.join(AFFINITIES)}.")
  if sampler not in SAMPLERS:
    raise ValueError(f"Unknown sampler {sampler!r}; valid: "
                     f"{', '.join(SAMPLERS)}.")
  if scale_k is None:
    scale_k = max(1, num_neighbors // 2)
  problems = []
  if num_neighbors < 1:
    problems.append(f"num_neighbors = {num_neighbors} must be ≥ 1")
  if not 1 <= scale_k <= num_neighbors:
    problems.append(f"scale_k = {scale_k} must be in [1, num_neighbors = "
                    f"{num_neighbors}] (the scale neighbour is one of the "
                    "kNN)")
  if steps < 0:
    problems.append(f"steps = {steps} must be ≥ 0")
  if num_views < 1:
    problems.append(f"num_views = {num_views} must be ≥ 1")
  if aug_weight < 0:
    problems.append(f"aug_weight = {aug_weight} must be ≥ 0")
  if n is not None:
    if n % num_views:
      problems.append(f"{n} rows do not split into num_views = {num_views} "
                      "equal blocks")
    elif num_neighbors > n - num_views:
      problems.append(f"num_neighbors = {num_neighbors} needs rows of at "
                      f"least {num_neighbors + 1} images; the batch has "
                      f"{n} rows = {n // num_views} images × {num_views} "
                      "views")
  if problems:
    raise ValueError("; ".join(problems) + ".")
  return scale_k


def affinity_graph(z_nd, *, num_neighbors=10, affinity="gaussian",
                   scale_k=None, num_views=2, aug_weight=1.0):
  """Symmetric kNN affinity matrix W [n, n] (float32) of the rows of z_nd.

  Rows are `num_views` equal blocks, view-major: row v·m + i (m = n /
  num_views) is view v of image i. On stop-gradient, float32 z:

    N_k(i)   the num_neighbors nearest rows among OTHER images' rows
             (Euclidean, or largest cosine for "cosine"); ties at the k-th
             value are all kept. The other views of i's image are left out
             of the search and of the scale: they get their own edge below,
             and since invariance pulls views together they would otherwise
             take a kNN slot and shrink σ towards the view-to-view distance,
             cutting every cross-image edge
    A_ij     "gaussian":    exp(−‖z_i − z_j‖² / σ²), σ = median over i of
                            the distance from i to its scale_k-th neighbour
                            (SpectralNet's global scale)
             "self_tuning": exp(−‖z_i − z_j‖² / (σ_i σ_j)), σ_i = that
                            distance for row i (Zelnik-Manor & Perona 2004)
             "cosine":      max(cos(z_i, z_j), 0)
    W'       = A masked to j ∈ N_k(i);  W = (W' + W'ᵀ)/2 (SpectralNet)
    W_ij     = aug_weight for every pair of distinct views of one image,
               whatever the kNN says: the augmentation edge is always
               there (A ≤ 1, so the default 1 is the largest affinity)
    W_ii     = 0, except 1 for a row left without any edge (possible only
               with num_views = 1 or aug_weight = 0): a walk there stays put

  scale_k defaults to num_neighbors // 2 (SpectralNet's ratio, 15 of 30).
  Memory O(n²) (the n×n Gram, scores and W), time O(n²·d).
  """
  n = z_nd.shape[0]
  scale_k = check_walk_args(n, num_neighbors=num_neighbors, affinity=affinity,
                            scale_k=scale_k, num_views=num_views,
                            aug_weight=aug_weight)
  z = jax.lax.stop_gradient(z_nd).astype(jnp.float32)
  eye = jnp.eye(n, dtype=bool)
  image = jnp.arange(n) % (n // num_views)
  same = image[:, None] == image[None]  # views of one image, self included
  if affinity == "cosine":
    zn = l2_normalize(z)
    score = zn @ zn.T  # larger = nearer
  else:
    z = z - z.mean(0)  # distances are translation-free; centring keeps the
    sq = jnp.sum(z * z, -1)  # Gram form ‖a‖² + ‖b‖² − 2ab accurate
    d2 = jnp.maximum(sq[:, None] + sq[None] - 2.0 * z @ z.T, 0.0)
    score = -d2
  score = jnp.where(same, -jnp.inf, score)
  nearest, _ = jax.lax.top_k(score, num_neighbors)  # [n, k], descending
  # Columns are read by masked minima, not slices: XLA:CPU turns a top_k
  # whose output is sliced into a full sort (60× slower at n = 4096).
  col = jnp.arange(num_neighbors)
  knn = score >= nearest.min(1, keepdims=True)
  if affinity == "cosine":
    a = jnp.maximum(score, 0.0)
  else:
    dist_k = jnp.sqrt(-jnp.min(jnp.where(col < scale_k, nearest, jnp.inf), 1))
    if affinity == "gaussian":
      s2 = jnp.square(jnp.median(dist_k))
    else:
      s2 = dist_k[:, None] * dist_k[None]
    # Duplicated points give σ = 0: then equal rows get affinity 1, others 0.
    a = jnp.exp(-d2 / jnp.maximum(s2, jnp.finfo(jnp.float32).tiny))
  w = jnp.where(knn, a, 0.0)
  w = (w + w.T) / 2.0
  w = jnp.where(same & ~eye, jnp.float32(aug_weight), w)
  return w + jnp.diag((w.sum(1) <= 0).astype(jnp.float32))


def _draw(key, cdf_nn, rows):
  """For each walker b at node rows[b], the next node j with probability
  W[rows[b], j] / Σ_j W[rows[b], j], by inverse CDF: the first j with
  cdf[rows[b], j] > u·total. Binary search over the row: ⌈log₂ n⌉ gathers
  of one entry per walker, O(n log n), where Gumbel-max would draw n² noise
  values per step. Zero-weight entries never win (their cdf equals the
  previous one)."""
  n = cdf_nn.shape[1]
  total = cdf_nn[rows, n - 1]
  u = jax.random.uniform(key, rows.shape, jnp.float32) * total
  # u·total can round up to total; the largest float below keeps it valid.
  u = jnp.minimum(u, jnp.nextafter(total, jnp.float32(0)))

  def body(_, lohi):
    lo, hi = lohi
    mid = (lo + hi) // 2
    right = cdf_nn[rows, mid] <= u
    return jnp.where(right, mid + 1, lo), jnp.where(right, hi, mid)

  lo = jnp.zeros_like(rows)
  hi = jnp.full_like(rows, n - 1)
  return jax.lax.fori_loop(0, (n - 1).bit_length(), body, (lo, hi))[0]


def random_walk_partners(key, z_nd, *, num_neighbors=10, steps=1,
                         affinity="gaussian", scale_k=None, num_views=2,
                         aug_weight=1.0, sampler="walk", mesh=None):
  """A random-walk partner for every row of z_nd: int32 [n].

  The graph is `affinity_graph(z_nd, ...)` (see there for num_neighbors,
  affinity, scale_k, num_views — the view-major layout that says which rows
  are views of one image — and aug_weight), built on stop-gradient
  embeddings. With P = D⁻¹W (D = diag of the row sums), partner[i] is a
  draw from row i of Pᵗ, t = steps (t = 0: every row is its own partner).

  sampler:
    "walk"  (default) t successive transitions of a walker started at i:
            a t-step Markov chain draw IS a draw from row i of Pᵗ, exactly.
            One cumulative sum of W (O(n²)), then per step a binary search
            per walker, O(n log n): the time is O(n²·d) for the graph plus
            O(t·n log n), memory O(n²) whatever t.
    "power" Pᵗ by repeated squaring (⌊log₂ t⌋ + popcount(t) − 1 products
            of n×n matrices, O(n³ log t) time, O(n²) memory), then one
            draw per row. Same distribution; kept as the reference the
            benchmark compares with (benchmarks/random_walk.py).

  Global batch: under jit with z_nd sharded, pass the device `mesh`: z is
  then gathered (replicated) before the graph is built, so every device
  builds the same graph and draws the same partners from the same key,
  whatever the device count. No gradient flows through the result.
  """
  if mesh is not None:
    z_nd = jax.lax.with_sharding_constraint(
        z_nd, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
  check_walk_args(z_nd.shape[0], num_neighbors=num_neighbors, steps=steps,
                  affinity=affinity, scale_k=scale_k, num_views=num_views,
                  aug_weight=aug_weight, sampler=sampler)
  w = affinity_graph(z_nd, num_neighbors=num_neighbors, affinity=affinity,
                     scale_k=scale_k, num_views=num_views,
                     aug_weight=aug_weight)
  n = w.shape[0]
  rows = jnp.arange(n, dtype=jnp.int32)
  if steps == 0:
    return rows
  if sampler == "power":
    p_t = jnp.linalg.matrix_power(w / w.sum(1, keepdims=True), steps)
    return _draw(key, jnp.cumsum(p_t, axis=1), rows)
  cdf = jnp.cumsum(w, axis=1)
  keys = jax.random.split(key, steps)
  return jax.lax.fori_loop(0, steps, lambda s, x: _draw(keys[s], cdf, x),
                           rows)


def batch_spec(mesh):
  """PartitionSpec of a batch's leading axis over every axis of the mesh
  ("data", or "data" × "fsdp"): the batch is split over all devices."""
  names = tuple(mesh.axis_names)
  return jax.sharding.PartitionSpec(names[0] if len(names) == 1 else names)
