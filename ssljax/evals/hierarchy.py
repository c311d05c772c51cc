"""Does the embedding's geometry follow the label hierarchy?

Fine-class centroids are compared with the label tree:

  tree_distance       cophenetic distance in the tree between fine classes:
                      the number of coarser levels at which their ancestors
                      differ (2 levels: 0 = same coarse class, 1 = different)
  spearman, kendall_tau_b
                      rank correlations, ties handled as scipy.stats does
                      (average ranks; Kendall's τ-b)
  average_linkage     UPGMA dendrogram of the centroids -> cophenetic matrix
  average_linkage_cut the same dendrogram cut into k flat clusters
  hierarchy_rank_correlation
                      Spearman ρ and Kendall τ-b between centroid distances
                      and tree distances (upper triangle), plus cophenetic
                      correlations of the centroid dendrogram

Everything is jnp and jitted; the label -> tree bookkeeping is on the host.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ssljax.evals import geometry


def _f32(x):
  return jnp.asarray(x, jnp.float32)


def _avg_ranks(v):
  """1-based ranks with ties averaged (scipy.stats.rankdata 'average')."""
  s = jnp.sort(v)
  lo = jnp.searchsorted(s, v, side="left")
  hi = jnp.searchsorted(s, v, side="right")
  return (lo + hi + 1).astype(jnp.float32) / 2.0


def _pearson(a, b):
  a = a - a.mean()
  b = b - b.mean()
  return jnp.sum(a * b) / jnp.sqrt(jnp.sum(a * a) * jnp.sum(b * b))


@jax.jit
def spearman(x, y):
  """Spearman ρ: Pearson correlation of average ranks."""
  return _pearson(_avg_ranks(_f32(x)), _avg_ranks(_f32(y)))


def _tie_pairs(v):
  """Σ over tie groups of t(t−1)/2."""
  s = jnp.sort(v)
  t = (jnp.searchsorted(s, v, side="right")
       - jnp.searchsorted(s, v, side="left")).astype(jnp.float32)
  return jnp.sum(t - 1.0) / 2.0


@functools.partial(jax.jit, static_argnames="num_levels")
def kendall_tau_b(x, y, *, num_levels):
  """Kendall τ-b between continuous x and integer y in [0, num_levels).

  n_c − n_d = Σ over level pairs a<b of Σ_{i∈a, j∈b} sign(x_j − x_i),
  each inner sum from a sorted copy of level a and two searchsorted calls:
  O(L·m log m) instead of O(m²), exact (tree distances have few levels).
  """
  x, y = _f32(x), jnp.asarray(y, jnp.int32)
  m = x.shape[0]
  s = jnp.float32(0.0)
  for a in range(num_levels):
    in_a = y == a
    sorted_a = jnp.sort(jnp.where(in_a, x, jnp.inf))
    n_a = jnp.sum(in_a)
    below = jnp.searchsorted(sorted_a, x, side="left")  # x_i < x_j, i in a
    above = n_a - jnp.searchsorted(sorted_a, x, side="right")
    s += jnp.sum(jnp.where(y > a, (below - above).astype(jnp.float32), 0.0))
  n0 = m * (m - 1) / 2.0
  return s / jnp.sqrt((n0 - _tie_pairs(x)) * (n0 - _tie_pairs(y)))


def tree_distance(parents):
  """[C, C] tree distance from parents[l][c] = ancestor of fine class c at
  level l (l = 0 is the first level above fine)."""
  p_lc = np.asarray(parents).reshape(len(parents), -1)
  return (p_lc[:, :, None] != p_lc[:, None, :]).sum(0)


def _upgma_init(dist_cc, with_coph):
  """UPGMA state: (distances, sizes, member, alive, cophenetic matrix);
  member[i] = the representative index of i's cluster."""
  dist_cc = _f32(dist_cc)
  c = dist_cc.shape[0]
  return (dist_cc, jnp.ones((c,), jnp.float32), jnp.arange(c),
          jnp.ones((c,), bool),
          jnp.zeros_like(dist_cc) if with_coph else jnp.zeros(()))


@functools.partial(jax.jit, static_argnames="with_coph")
def _upgma(carry, num_merges, *, with_coph):
  """`num_merges` (traced: no recompile per count) UPGMA merges from state
  `carry`, each O(C²): Lance–Williams update of the cluster distances;
  coph[i, j] = the height where i and j joined (with_coph)."""
  c = carry[0].shape[0]
  eye = jnp.eye(c, dtype=bool)

  def merge(_, carry):
    d, size, member, alive, coph = carry
    d_masked = jnp.where(alive[:, None] & alive[None] & ~eye, d, jnp.inf)
    flat = jnp.argmin(d_masked)
    a, b = flat // c, flat % c
    in_a, in_b = member == a, member == b
    if with_coph:
      cross = (in_a[:, None] & in_b[None]) | (in_b[:, None] & in_a[None])
      coph = jnp.where(cross, d_masked[a, b], coph)
    new = (size[a] * d[a] + size[b] * d[b]) / (size[a] + size[b])
    d = d.at[a].set(new).at[:, a].set(new)
    return (d, size.at[a].add(size[b]), jnp.where(in_b, a, member),
            alive.at[b].set(False), coph)

  return jax.lax.fori_loop(0, num_merges, merge, carry)


@jax.jit
def average_linkage(dist_cc):
  """Cophenetic matrix of the UPGMA (average-linkage) dendrogram of a
  distance matrix: entry (i, j) = the merge height where i and j first join.
  C−1 merges, each O(C²) (Lance–Williams update of the cluster distances)."""
  return _upgma(_upgma_init(dist_cc, True), dist_cc.shape[0] - 1,
                with_coph=True)[4]


def average_linkage_cut(dist_cc, k):
  """Flat clusterings from cutting the UPGMA dendrogram of a distance
  matrix where it has k clusters (the first C − k merges: scipy's
  fcluster(..., k, "maxclust") on a tie-free dendrogram), labels 0..k−1.

  k: an int (returns [C] labels) or a sequence of ints (returns a list,
  in the order given, from ONE pass of the merges: cuts of one dendrogram).
  """
  ks = [k] if np.ndim(k) == 0 else list(k)
  c = np.shape(dist_cc)[0]
  bad = [v for v in ks if not 1 <= v <= c]
  if bad:
    raise ValueError(f"Cannot cut {c} points into {bad} clusters.")
  carry, done, cuts = _upgma_init(dist_cc, False), 0, {}
  for v in sorted(set(ks), reverse=True):
    carry = _upgma(carry, c - v - done, with_coph=False)
    done = c - v
    cuts[v] = np.unique(np.asarray(carry[2]), return_inverse=True)[1]
  return cuts[ks[0]] if np.ndim(k) == 0 else [cuts[v] for v in ks]


def parents_of(fine_y, coarse_y, num_fine):
  """Ancestor of every fine class at this level; refuses non-nested labels."""
  fine_y, coarse_y = np.asarray(fine_y), np.asarray(coarse_y)
  parent = np.full(num_fine, -1)
  parent[fine_y] = coarse_y
  if np.any(parent[fine_y] != coarse_y):
    bad = int(fine_y[np.argmax(parent[fine_y] != coarse_y)])
    raise ValueError(f"Labels are not a tree: fine class {bad} has samples "
                     "in more than one coarse class. Pass coarse labels that "
                     "are a function of the fine label.")
  return parent


def hierarchy_rank_correlation(x, fine_y, coarse_y):
  """Rank agreement of fine-class centroid distances with the label tree.

  x: [n, d] features; fine_y: [n]; coarse_y: [n] or a list of [n] arrays
  ordered from the level just above fine to the coarsest (deeper trees use
  the cophenetic tree distance). Embedding distance = Euclidean distance
  between fine-class centroids; pairs are the upper triangle over present
  classes.

  Returns dict: spearman, kendall (τ-b), cophenetic_correlation (Pearson of
  the centroids' UPGMA cophenetic distances with the centroid distances, as
  scipy.cluster.hierarchy.cophenet) and tree_cophenetic_correlation (Pearson
  of those cophenetic distances with the tree distance).
  """
  levels = [coarse_y] if np.ndim(coarse_y[0]) == 0 else list(coarse_y)
  fine_y = np.asarray(fine_y)
  num_fine = int(fine_y.max()) + 1
  parents = [parents_of(fine_y, c, num_fine) for c in levels]
  mu_cd, count_c = geometry.class_means(x, jnp.asarray(fine_y, jnp.int32),
                                        num_classes=num_fine)
  present = np.flatnonzero(np.asarray(count_c) > 0)
  mu_cd = mu_cd[present]
  tree = tree_distance([p[present] for p in parents])
  dist = jnp.sqrt(geometry.pairwise_sq_distances(mu_cd))
  iu = np.triu_indices(len(present), k=1)
  e, t = dist[iu], jnp.asarray(tree[iu])
  coph = average_linkage(dist)[iu]
  return {"spearman": float(spearman(e, t)),
          "kendall": float(kendall_tau_b(e, t, num_levels=len(levels) + 1)),
          "cophenetic_correlation": float(_pearson(coph, e)),
          "tree_cophenetic_correlation": float(_pearson(coph, t.astype(
              jnp.float32)))}
