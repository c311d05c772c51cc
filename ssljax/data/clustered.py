"""Clustered mini-batches: which training examples each batch may draw from.

The rate-distortion auto-encoder (Sanchez Giraldo & Principe, ICLR 2014)
trains on mini-batches formed from pre-clustered data, so that the Gram
matrices of a batch see local structure (neighbouring samples) rather than
a random sample of the whole distribution. This module computes, once per
run and from the data alone, one pool of example indices per cluster;
`pipeline.train_iterator(..., clusters=Clusters(...))` draws every global
batch from one pool.

  clusters  k-means on the features (k-means++ seeding, then Lloyd
            iterations until no assignment changes or `iters`), in float64
            numpy on the host: every process computes the same clusters
            (device reductions may differ between runs and processes)
  pool c    the members of cluster c, plus the members of its `neighbours`
            nearest clusters (by centroid distance); a pool smaller than
            `min_size` (the global batch) is topped up with the examples
            nearest to centroid c, so every pool can fill a batch

All draws derive from `seed`: the same data and seed give the same pools.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Clusters:
  """Clustered-batch option: k-means with `num_clusters` clusters, each
  batch from one cluster plus its `neighbours` nearest clusters; at most
  `iters` Lloyd iterations."""
  num_clusters: int
  neighbours: int = 1
  iters: int = 100

  def __post_init__(self):
    problems = []
    if not isinstance(self.num_clusters, int) or self.num_clusters < 1:
      problems.append(f"num_clusters = {self.num_clusters!r}: must be an "
                      "integer ≥ 1 (0 in a config turns the option off)")
    if (not isinstance(self.neighbours, int) or self.neighbours < 0
        or (isinstance(self.num_clusters, int)
            and self.neighbours >= max(self.num_clusters, 1))):
      problems.append(f"neighbours = {self.neighbours!r}: must be an integer "
                      f"in [0, num_clusters − 1]")
    if not isinstance(self.iters, int) or self.iters < 1:
      problems.append(f"iters = {self.iters!r}: must be an integer ≥ 1")
    if problems:
      raise ValueError("Bad clustered-batch option (data.cluster): "
                       + "; ".join(problems) + ".")


def from_config(data_cfg):
  """The Clusters option of a config's `data` section, or None when
  data.cluster is absent or its num_clusters is 0 (ordinary batches)."""
  c = data_cfg.get("cluster")
  if not c or not c.get("num_clusters"):
    return None
  fields = [f.name for f in dataclasses.fields(Clusters)]
  unknown = sorted(set(c) - set(fields))
  if unknown:
    raise ValueError(f"Unknown field(s) {unknown} of data.cluster; valid: "
                     f"{', '.join(fields)}.")
  return Clusters(**dict(c))


def _sq_dists(x_nd, c_kd):
  return np.maximum((x_nd * x_nd).sum(1)[:, None] - 2.0 * x_nd @ c_kd.T
                    + (c_kd * c_kd).sum(1)[None], 0.0)


def kmeans(x_nd, k, seed=0, iters=100):
  """(assignment int64 [n], centres float64 [k, d]) of Lloyd's k-means from
  k-means++ seeds (Arthur & Vassilvitskii 2007). An emptied cluster keeps
  its centre."""
  x = np.asarray(x_nd, np.float64)
  n = len(x)
  if not 1 <= k <= n:
    raise ValueError(f"k-means with {k} clusters needs 1 ≤ k ≤ {n} (the "
                     "number of examples); lower data.cluster.num_clusters.")
  rng = np.random.default_rng(seed)
  centres = [x[rng.integers(n)]]
  d2 = _sq_dists(x, centres[0][None])[:, 0]
  for _ in range(1, k):
    # Duplicated points can leave every distance 0: then pick uniformly.
    p = d2 / d2.sum() if d2.sum() > 0 else None
    centres.append(x[rng.choice(n, p=p)])
    d2 = np.minimum(d2, _sq_dists(x, centres[-1][None])[:, 0])
  c = np.stack(centres)
  assign = np.full(n, -1)
  for _ in range(iters):
    new = _sq_dists(x, c).argmin(1)
    if np.array_equal(new, assign):
      break
    assign = new
    for j in range(k):
      members = assign == j
      if members.any():
        c[j] = x[members].mean(0)
  return assign, c


def pools(x_nd, clusters, min_size, seed=0):
  """One sorted int64 array of example indices per cluster (see the module
  docstring), each holding at least `min_size` examples."""
  x = np.asarray(x_nd, np.float64)
  if len(x) < min_size:
    raise ValueError(f"The split has {len(x)} examples, fewer than one "
                     f"global batch ({min_size}); lower the batch size.")
  assign, centres = kmeans(x, clusters.num_clusters, seed, clusters.iters)
  centre_d2 = _sq_dists(centres, centres)
  out = []
  for c in range(clusters.num_clusters):
    # argsort is stable and d(c, c) = 0: cluster c first, then neighbours.
    near = np.argsort(centre_d2[c], kind="stable")[:clusters.neighbours + 1]
    pool = np.flatnonzero(np.isin(assign, near))
    if len(pool) < min_size:
      by_distance = np.argsort(_sq_dists(x, centres[c][None])[:, 0],
                               kind="stable")
      extra = by_distance[~np.isin(by_distance, pool)]
      pool = np.concatenate([pool, extra[:min_size - len(pool)]])
    out.append(np.sort(pool).astype(np.int64))
  return out
