"""SAG-VICReg's mechanism in minutes: nested Gaussian clusters, one unseen.

  python -m ssljax.experiments.sag_toy --workdir=/tmp/sag_toy
  python -m ssljax.experiments.sag_toy --workdir=/tmp/t --config.steps=100 \
      --config.seeds='(0,)' --config.data.noise=0.5   # any default_config()
  python -m ssljax.experiments.sag_toy --workdir=/tmp/sag_toy --replot

Pretrain on some clusters, embed data holding one more (docs/sag_toy.md).
Data (`make_data`, numpy, data.seed; the same for every training seed):
2 super × 3 clusters × 2 sub-clusters = 12 fine classes, Gaussians (std
data.noise) in 8-D around centres nested by construction (orthonormal
q0..q7): supers at ±R_s·q0; a super's clusters on a circle of radius R_c in
span(q1, q2); a cluster's sub-clusters at ±R_f along a random unit vector
of span(q3..q7). As 2R_f < √3·R_c and √(3R_c² + 4R_f²) < 2R_s, every pair of
sub-clusters of a cluster is nearer than any pair of clusters of a super,
nearer than any pair across. A random isometry maps them into 32-D (+ small
noise). Coarse cluster data.holdout (both its sub-clusters) is left out of
pretraining. Views (the toy's crops): every coordinate scaled by U(1 − s,
1 + s), plus Gaussian jitter: like two crops, two observations of one
sample that never join two samples (VICReg's graph is block-diagonal).

Methods: the library's `vicreg.make_objective` and
`sag_vicreg.make_objective` (`losses.vicreg`, `sag_vicreg.sag_loss`,
`ops.random_walk_partners`) on `joint.JointEmbedding`: MLP trunk
(`models.MLP` 128-128-16, the representation its last Linear), 64-64
projector; SAG-VICReg at the library's pairing defaults (α = 0.5, 3-step
walk on the 10-NN graph of the encoder features); at a seed the same init,
batches, views and AdamW (`optim.make`) for both; 1500 steps at batch 256.

Metrics (`ssljax.evals`, on the test split with the held-out cluster):
all/: kNN (k = 20), NCC of the 12 classes; unseen/: the same for the
held-out cluster's 2 sub-clusters, fit on its train points; placement/: its
super-cluster by kNN / NCC on the seen clusters' train points; tree/:
Spearman, Kendall, cophenetic correlations of class centroids vs the tree;
agglo_ari/: ARI of average-linkage cuts per level; sgs. partners/: of the
walk partners SAG-VICReg's graph draws on pretraining batches with this
encoder, the share of other points (cross) and of same-label ones. Rows:
input x, random-init encoder, VICReg, SAG-VICReg.

Runtime: 3 min 11 s for the 3 default seeds on 2 CPU cores shared with
other jobs (2026-12-03); cells are saved as they finish, a rerun resumes.
Writes WORKDIR/results.json ({"setup", "runs": {"input" | "seedS/METHOD":
{"metrics", "seconds"}}, "summary": {METHOD: {metric: {"mean", "std"
(ddof = 1), "n"}}}}), results.md (tables, SAG-VICReg − VICReg per metric),
emb_seed<lowest>_METHOD.npy (test representations) and sag_toy.png (their
2-D PCA, held-out cluster marked; bar chart of the means); the tables
and the figure come from `ssljax.experiments.sag_toy_report`.
"""

import functools
import json
import time

from absl import app
from absl import flags
from etils import epath
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_flags
import numpy as np
import optax
from ssljax import evals
from ssljax import files
from ssljax import models
from ssljax import ops
from ssljax import optim
from ssljax import runtime
from ssljax.experiments import sag_toy_report as report
from ssljax.methods import joint
from ssljax.methods import sag_vicreg
from ssljax.methods import vicreg

METHODS = ("vicreg", "sag_vicreg")


def default_config():
  return ml_collections.ConfigDict(dict(
      # First settings r_super = 6, noise = 0.5: every row, the input and
      # the random init included, scored ≥ 0.96 on the unseen metrics
      # (docs/sag_toy.md); closer supers and overlapping sub-clusters.
      data=dict(seed=0, latent=8, ambient=32, r_super=4.0, r_cluster=3.0,
                r_sub=1.0, noise=0.9, ambient_noise=0.1, train_per_sub=200,
                test_per_sub=100, holdout=2),
      aug=dict(jitter=0.3, scale=0.2),
      encoder="128-128-16", projector="64-64", steps=1500, batch_size=256,
      optim=dict(name="adamw", base_lr=1e-3, weight_decay=1e-4,
                 warmup_epochs=5, warmup_start_factor=0.0, end_factor=0.0),
      seeds=(0, 1, 2), knn_k=20, partner_batches=4))


def make_data(c):
  """{"train", "test"}: {"x" [n, ambient] float32, "fine", "coarse",
  "super" [n] int}, and "centres" [12, ambient] (fine-class centres).
  Fine class f = 2·coarse + sub, coarse = 3·super + cluster."""
  rng = np.random.default_rng(c.seed)
  q = np.linalg.qr(rng.normal(size=(c.latent, c.latent)))[0].T  # rows q_i
  embed = np.linalg.qr(rng.normal(size=(c.ambient, c.latent)))[0].T
  centres, labels = [], []
  for s in range(2):
    for k in range(3):
      theta = 2 * np.pi * k / 3 + s * np.pi / 3  # supers not mirror images
      cl = ((2 * s - 1) * c.r_super * q[0]
            + c.r_cluster * (np.cos(theta) * q[1] + np.sin(theta) * q[2]))
      u = rng.normal(size=c.latent - 3) @ q[3:]
      u /= np.linalg.norm(u)
      for b in range(2):
        centres.append(cl + (2 * b - 1) * c.r_sub * u)
        labels.append((2 * (3 * s + k) + b, 3 * s + k, s))
  centres = np.stack(centres)

  def split(per):
    lab = np.repeat(np.array(labels), per, axis=0)
    z = centres[lab[:, 0]] + c.noise * rng.normal(size=(len(lab), c.latent))
    x = z @ embed + c.ambient_noise * rng.normal(size=(len(lab), c.ambient))
    return {"x": x.astype(np.float32), "fine": lab[:, 0],
            "coarse": lab[:, 1], "super": lab[:, 2]}

  return {"train": split(c.train_per_sub), "test": split(c.test_per_sub),
          "centres": (centres @ embed).astype(np.float32)}


def pretrain_x(data, holdout):
  """The pretraining points: the train split without coarse cluster
  `holdout`."""
  return data["train"]["x"][data["train"]["coarse"] != holdout]


def augment(key, x_nd, aug):
  """Two views [x·(1 + s·U(−1, 1)) + jitter·N(0, 1)] (module docstring)."""
  views = []
  for k in jax.random.split(key, 2):
    k_scale, k_noise = jax.random.split(k)
    scale = 1 + aug.scale * jax.random.uniform(k_scale, x_nd.shape,
                                               minval=-1.0, maxval=1.0)
    views.append(x_nd * scale + aug.jitter * jax.random.normal(
        k_noise, x_nd.shape))
  return views


class Encoder(nn.Module):
  """The toy trunk: ssljax's MLP (Linear + BN + ReLU, last Linear), returning
  (representation, {}) as the library's encoders do."""
  spec: str

  @nn.compact
  def __call__(self, x, train=False):
    return models.MLP(self.spec, name="mlp")(x, train=train), {}


def build(cfg):
  # VICReg's head convention (vicreg.build): hidden bias, no last bias.
  return joint.JointEmbedding(
      encoder=Encoder(cfg.encoder),
      projector=models.MLP(cfg.projector, hidden_bias=True, last_bias=False))


def method_config(cfg):
  """sag_vicreg's defaults (pairing and VICReg's λ, μ, ν) for this toy."""
  m = sag_vicreg.default_config()
  m.projector, m.batch_size = cfg.projector, cfg.batch_size
  return m


def objectives(m, net, total_steps):
  return {"vicreg": vicreg.make_objective(m, net, total_steps=total_steps),
          "sag_vicreg": sag_vicreg.make_objective(m, net,
                                                  total_steps=total_steps)}


def init(net, seed, x_nd):
  return net.init(jax.random.key(seed), [x_nd[:2], x_nd[:2]], train=True)


def make_pretrain(cfg, objective, n):
  """Jitted (variables, x_nd [n, D], seed) -> (variables, metrics of every
  step): cfg.steps AdamW steps of `objective` on random batches of x_nd, in
  one scan. Built once per method, run for every seed. The batch, view and
  loss keys of step t depend on (seed, t) only: the same for every method."""
  tx, _ = optim.make(cfg.optim, cfg.batch_size, cfg.steps, n / cfg.batch_size)

  def train(variables, x_nd, seed):
    def step(carry, t):
      variables, opt_state, state = carry
      key = jax.random.fold_in(jax.random.fold_in(jax.random.key(1000),
                                                  seed), t)
      k_batch, k_aug, k_loss = jax.random.split(key, 3)
      idx = jax.random.choice(k_batch, n, (cfg.batch_size,), replace=False)
      views = augment(k_aug, x_nd[idx], cfg.aug)
      loss = lambda p: objective.loss(dict(variables, params=p), state,
                                      views, k_loss)
      (_, aux), grads = jax.value_and_grad(loss, has_aux=True)(
          variables["params"])
      updates, opt_state = tx.update(grads, opt_state, variables["params"])
      variables = {"params": optax.apply_updates(variables["params"],
                                                 updates),
                   "batch_stats": aux.batch_stats}
      state, _ = objective.update_state(aux.state, variables, t)
      return (variables, opt_state, state), aux.metrics

    carry = (variables, tx.init(variables["params"]),
             objective.init_state(variables))
    (variables, _, _), metrics = jax.lax.scan(step, carry,
                                              jnp.arange(cfg.steps))
    return variables, metrics

  return jax.jit(train)


@functools.partial(jax.jit, static_argnums=0)
def represent(net, variables, x_nd):
  """Eval-mode representations (BatchNorm running statistics)."""
  return net.apply(variables, x_nd, method="represent")["rep"]


@functools.partial(jax.jit, static_argnames="kw")
def _walks(keys, g_bmd, kw):
  """ops.random_walk_partners of every batch (kw: its keyword arguments as
  a tuple of items, hashable: one compile for every row and seed)."""
  return jax.vmap(lambda k, g: ops.random_walk_partners(k, g, **dict(kw)))(
      keys, g_bmd)


def partner_stats(cfg, f, data):
  """Walk partners of `f` (x -> features) on cfg.partner_batches batches of
  pretraining points, as the SAG-VICReg loss draws them (two augmented
  views; library defaults; eval-mode features): the share of rows whose
  partner is another point (cross), and of those the share with the same
  fine / coarse / super label."""
  tr, p = data["train"], method_config(cfg).pairing
  nb, n = cfg.partner_batches, cfg.batch_size
  seen = np.flatnonzero(tr["coarse"] != cfg.data.holdout)
  rng = np.random.default_rng(12345)  # the same batches for every row
  idx_bn = np.stack([rng.choice(seen, n, replace=False) for _ in range(nb)])
  views = augment(jax.random.key(12345), tr["x"][idx_bn.ravel()], cfg.aug)
  g = np.stack([f(v).reshape(nb, n, -1) for v in views], 1)  # [b, 2, n, d]
  part_bm = np.asarray(_walks(jax.random.split(jax.random.key(1), nb),
                              jnp.asarray(g.reshape(nb, 2 * n, -1)),
                              tuple(sag_vicreg.walk_kwargs(p).items())))
  img, img_p = np.arange(2 * n) % n, part_bm % n  # view-major rows
  other = img != img_p
  out = {"partners/cross": float(other.mean())}
  for lv in ("fine", "coarse", "super"):
    y_bn = tr[lv][idx_bn]
    same = y_bn[:, img] == np.take_along_axis(y_bn, img_p, 1)
    out[f"partners/same_{lv}"] = float(same[other].mean())
  return out


def metrics(cfg, f, data):
  """Every metric of the module docstring for features f(x)."""
  tr, te, k = data["train"], data["test"], cfg.knn_k
  x_tr, x_te = f(tr["x"]), f(te["x"])
  out = {"all/knn": evals.knn_accuracy(x_tr, tr["fine"], x_te, te["fine"],
                                       k=k),
         "all/ncc": evals.ncc_accuracy(x_tr, tr["fine"], x_te, te["fine"])}
  h_tr, h_te = (tr["coarse"] == cfg.data.holdout,
                te["coarse"] == cfg.data.holdout)
  # Unseen: the held-out sub-clusters, relabelled 0/1 (2 classes).
  y_tr, y_te = tr["fine"][h_tr] % 2, te["fine"][h_te] % 2
  out["unseen/knn"] = evals.knn_accuracy(x_tr[h_tr], y_tr, x_te[h_te], y_te,
                                         k=k)
  out["unseen/ncc"] = evals.ncc_accuracy(x_tr[h_tr], y_tr, x_te[h_te], y_te)
  # Placement: which super-cluster the seen clusters put the new one in.
  s_tr, s_te = tr["super"][~h_tr], te["super"][h_te]
  out["placement/knn"] = evals.knn_accuracy(x_tr[~h_tr], s_tr, x_te[h_te],
                                            s_te, k=k, num_classes=2)
  out["placement/ncc"] = evals.ncc_accuracy(x_tr[~h_tr], s_tr, x_te[h_te],
                                            s_te, num_classes=2)
  h = evals.hierarchy_rank_correlation(x_te, te["fine"],
                                       [te["coarse"], te["super"]])
  out.update({"tree/spearman": h["spearman"], "tree/kendall": h["kendall"],
              "tree/cophenetic_tree": h["tree_cophenetic_correlation"],
              "tree/cophenetic_centroids": h["cophenetic_correlation"]})
  levels = ("fine", "coarse", "super")
  # 600 of the 1200 test points (the same for every row): UPGMA and SGS
  # are O(m³), 10 s at m = 1000 on 2 cores.
  agg = evals.agglomerative_scores(x_te, [te[lv] for lv in levels],
                                   max_points=600)
  out.update({f"agglo_ari/{lv}": a["ari"] for lv, a in zip(levels, agg)})
  out["sgs"] = evals.spectral_global_structure(x_te, max_points=600)["sgs"]
  out.update(partner_stats(cfg, f, data))
  return {key: float(v) for key, v in out.items()}


def run_seed(cfg, data, seed, workdir, runs, save, net, trainers):
  """Random init, VICReg and SAG-VICReg at `seed`; each cell into `runs`
  and saved (`save()`) as it finishes; cells already in `runs` skipped."""
  x_pre = pretrain_x(data, cfg.data.holdout)
  v0 = init(net, seed, jnp.asarray(x_pre))
  for method in ("random_init",) + METHODS:
    name = f"seed{seed}/{method}"
    if name in runs:
      continue
    t = time.time()
    v, last = v0, {}
    if method != "random_init":
      v, hist = trainers[method](v0, jnp.asarray(x_pre), seed)
      tail = max(1, cfg.steps // 10)  # the last 10% of the run
      last = {f"train/{k}": float(np.mean(hist[k][-tail:])) for k in (
          "loss", "std", "pair_weight", "partner_other_view") if k in hist}
    f = lambda x, v=v: np.asarray(represent(net, v, jnp.asarray(x)))
    runs[name] = {"metrics": dict(metrics(cfg, f, data), **last),
                  "seconds": time.time() - t}
    if seed == min(cfg.seeds):
      np.save(epath.Path(workdir) / f"emb_seed{seed}_{method}.npy",
              f(data["test"]["x"]))
    print(f"{name}: {runs[name]['seconds']:.0f} s, " + ", ".join(
        f"{key} {runs[name]['metrics'][key]:.3f}" for key in (
            "unseen/knn", "placement/ncc", "all/knn", "tree/spearman")),
          flush=True)
    save()


def check(cfg):
  """ValueError naming every out-of-range field, before anything runs."""
  d, problems = cfg.data, []
  if d.holdout not in range(6):
    problems.append(f"data.holdout = {d.holdout!r}: one of the 6 coarse "
                    "clusters, 0-5.")
  pretrain = 10 * d.train_per_sub  # 12 fine classes, 2 of them held out
  if not 1 <= cfg.batch_size <= pretrain:
    problems.append(f"batch_size = {cfg.batch_size}: must be in [1, "
                    f"{pretrain}] (the pretraining examples).")
  for field in ("steps", "knn_k", "partner_batches"):
    if cfg[field] < 1:
      problems.append(f"{field} = {cfg[field]}: must be ≥ 1.")
  if not tuple(cfg.seeds):
    problems.append("seeds = (): give at least one seed, e.g. (0,).")
  if problems:
    raise ValueError("; ".join(problems))


def run(cfg, workdir, replot=False):
  """Every cell of cfg.seeds (resuming), then results.md and the figure;
  returns the results dict."""
  check(cfg)
  out = epath.Path(workdir)
  out.mkdir(parents=True, exist_ok=True)
  path = out / "results.json"
  results = json.loads(path.read_text()) if path.exists() else {}
  setup = json.loads(json.dumps(cfg.to_dict()))  # tuples as lists
  if replot and not results:
    raise ValueError(f"--replot: no {path}.")
  if not replot and results.get("setup", setup) != setup:
    raise ValueError(f"{path} was written with other settings "
                     f"({results['setup']}): use another --workdir.")
  if replot:  # the data of the stored runs, whatever cfg says
    cfg = ml_collections.ConfigDict(results["setup"])
  results.setdefault("setup", setup)
  runs = results.setdefault("runs", {})
  data = make_data(cfg.data)

  def save():
    results["summary"] = report.summarize(runs)
    files.write_atomic(path, json.dumps(results, indent=1))

  if not replot:
    if "input" not in runs:
      t = time.time()
      runs["input"] = {"metrics": metrics(cfg, lambda x: x, data),
                       "seconds": time.time() - t}
      save()
    net = build(cfg)
    objs = objectives(method_config(cfg), net, cfg.steps)
    n = len(pretrain_x(data, cfg.data.holdout))
    trainers = {m: make_pretrain(cfg, objs[m], n) for m in METHODS}
    for seed in cfg.seeds:
      run_seed(cfg, data, seed, out, runs, save, net, trainers)
  save()
  files.write_atomic(out / "results.md", report.markdown(results))
  report.plot(results, data, out)
  return results


def _define_flags():
  # At run time, so tests can import this module beside the experiments
  # that define --workdir too.
  flags.DEFINE_string("workdir", None, "Output directory.")
  config_flags.DEFINE_config_dict("config", default_config(),
                                  "--config.FIELD=VALUE changes any field.")
  flags.DEFINE_bool("replot", False, "Only rewrite results.md and the "
                    "figure from results.json.")
  flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  runtime.quiet_library_logs(flags.FLAGS.verbosity)
  t = time.time()
  try:
    check(flags.FLAGS.config)
  except ValueError as e:
    raise app.UsageError(f"--config: {e}") from None
  run(flags.FLAGS.config, flags.FLAGS.workdir, flags.FLAGS.replot)
  print((epath.Path(flags.FLAGS.workdir) / "results.md").read_text())
  print(f"total {time.time() - t:.0f} s; written: "
        f"{flags.FLAGS.workdir}/{{results.json,results.md,sag_toy.png}}")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
