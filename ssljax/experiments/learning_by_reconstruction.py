"""Learning by reconstruction (Balestriero & LeCun, ICML 2024) on a CPU.

  python -m ssljax.experiments.learning_by_reconstruction --workdir=/tmp/lbr
  python -m ssljax.experiments.learning_by_reconstruction --workdir=/tmp/lbr \
      --parts=pca,alignment --datasets=mnist5k          # a subset

Three parts, each on every dataset of --datasets (default: the shipped
hierarchical_shapes and mnist5k); finished cells are read back from
WORKDIR/results.json, so an interrupted run resumes.
1. pca: the same supervised CNN (`ssljax.analysis.supervised`, convnet
   width 16, 10 epochs, one recipe for every cell) trained on images
   projected onto the top subspace holding a share p of the pixel variance
   and onto the bottom rest (the remaining 1 − p), p ∈ --ps, plus the
   unprojected (standardized) images. `results.json["<ds>"]["pca"] =
   {"top": {p: acc}, "bottom": {p: acc}, "full": acc, "dims": {p: k}}`.
2. alignment: the closed-form optimal linear auto-encoder
   (`ssljax.analysis.reconstruction`) on --num_align train images, clean,
   with Gaussian noise of several σ (in units of the per-image-standardized
   pixels) and with masking (ratios × patch sizes); the cumulative task
   alignment of its first K directions for K = 1 … --align_k, as a share
   of the label energy of the whole space (so the curves are comparable).
3. training: `configs/compare_cpu.py` runs of ae (no corruption, Gaussian
   noise σ = 0.5, 4-px patch masking at ratio 0.5), mae, vicreg and simclr,
   with --num_points evenly spaced checkpoints kept; at step 0 and at each
   checkpoint the linear probe and kNN (k = 20) of the representation,
   and for the reconstruction methods their training loss (the logged
   loss averaged over the logging rows since the previous checkpoint).
Writes WORKDIR/results.json and WORKDIR/<ds>_{pca,alignment,training}.png.
"""

import functools
import json
import time

from absl import app
from absl import flags
from etils import epath
import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np
import ssljax.data
from ssljax import checkpoint
from ssljax import evals
from ssljax import experiments
from ssljax import files
from ssljax import saved_runs
from ssljax import train
from ssljax.analysis import reconstruction as rec
from ssljax.analysis import supervised

PARTS = ("pca", "alignment", "training")
RUNS = {  # name -> (compare_cpu method, config overrides); MAE, the
    # slowest on a CPU, last
    "vicreg": ("vicreg", {}),
    "simclr": ("simclr", {}),
    "ae": ("ae", {}),
    "ae_noise": ("ae", {"corruption.kind": "gaussian"}),
    "ae_mask": ("ae", {"corruption.kind": "mask"}),
    "mae": ("mae", {}),
}
FLAGS = flags.FLAGS


def _define_flags():
  # Defined when run, so the experiments import side by side (--workdir).
  flags.DEFINE_string("workdir", None, "Output directory.")
  flags.DEFINE_list("datasets", ["hierarchical_shapes", "mnist5k"],
                    "Datasets.")
  flags.DEFINE_list("parts", list(PARTS), f"Parts to run, of {PARTS}.")
  flags.DEFINE_list("ps", ["0.25", "0.5", "0.75", "0.9"], "Top shares p.")
  flags.DEFINE_integer("cnn_epochs", 10, "Epochs of the supervised CNN.")
  flags.DEFINE_integer("cnn_width", 16, "Width of the supervised CNN.")
  flags.DEFINE_integer("num_align", 2000,
                       "Train images for the closed forms.")
  flags.DEFINE_integer("align_k", 256, "Largest K of the alignment curves.")
  flags.DEFINE_list("align", list(ALIGN), "Corruptions of the alignment "
                    "part (each one D×D generalized eigenproblem).")
  flags.DEFINE_list("runs", list(RUNS), "Training runs (part 3).")
  flags.DEFINE_integer("num_points", 5, "Checkpoints per training run.")
  flags.DEFINE_integer("train_steps", None, "Override the runs' length (for "
                       "smoke tests; default: the config's epochs).")
  flags.DEFINE_integer("batch_size", None, "Override the runs' batch size.")
  flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: TFDS's).")
  flags.DEFINE_bool("replot", False, "Only redraw the figures.")
  flags.mark_flags_as_required(["workdir"])


def arrays(dataset, split):
  src = ssljax.data.load_source(dataset, split, FLAGS.data_dir)
  ex = [src[i] for i in range(len(src))]
  return (np.stack([e["image"] for e in ex]).astype(np.float32),
          np.array([e["label"] for e in ex]))


# ----------------------------------------------------------------------------
# 1. Top vs bottom PCA subspace.
# ----------------------------------------------------------------------------
def pca_part(dataset, out):
  (x_tr, y_tr), (x_te, y_te) = arrays(dataset, "train"), arrays(dataset,
                                                                "test")
  cnn = functools.partial(supervised.train_classifier,
                          epochs=FLAGS.cnn_epochs, width=FLAGS.cnn_width,
                          seed=0)
  mean_d, share_d, v_dd = rec.pca_fit(x_tr.reshape(len(x_tr), -1))
  if "full" not in out:
    std = lambda x: np.asarray(rec.standardize_images(x)).reshape(x.shape)
    out["full"] = cnn(std(x_tr), y_tr, std(x_te), y_te)
    print(f"{dataset} pca full {out['full']:.4f}", flush=True)
    yield
  for p in FLAGS.ps:
    k = rec.num_top(share_d, float(p))
    out.setdefault("dims", {})[p] = k
    for side, v in (("top", v_dd[:, :k]), ("bottom", v_dd[:, k:])):
      if p in out.get(side, {}):
        continue
      t = time.time()
      proj = lambda x: np.asarray(rec.project(x, mean_d, v))  # pylint: disable=cell-var-from-loop
      acc = cnn(proj(x_tr), y_tr, proj(x_te), y_te)
      out.setdefault(side, {})[p] = acc
      print(f"{dataset} pca {side} p={p} (k={k}) {acc:.4f} "
            f"({time.time() - t:.0f} s)", flush=True)
      yield


# ----------------------------------------------------------------------------
# 2. Closed-form alignment.
# ----------------------------------------------------------------------------
ALIGN = {"clean": {}, "noise 0.5": {"noise_std": 0.5},
         "noise 2": {"noise_std": 2.0}}
ALIGN.update({f"mask {r} patch {s}": {"mask_prob": r, "patch_size": s}
              for r, s in ((0.5, 1), (0.25, 4), (0.5, 4), (0.75, 4),
                           (0.75, 8))})


def alignment_part(dataset, out):
  x, y = arrays(dataset, "train")
  keep = np.random.default_rng(0).permutation(len(x))[:FLAGS.num_align]
  x, y = x[keep], y[keep]
  image_shape = (x.shape[3], x.shape[1], x.shape[2])
  x_nd = rec.standardize_images(jnp.transpose(x, (0, 3, 1, 2)))  # C-major
  for name in FLAGS.align:
    kw = ALIGN[name]
    if name in out:
      continue
    # All D directions, so that every curve is a share of the same total
    # (the label energy of the whole space), then the first align_k.
    v_dd, _ = rec.linear_ae_closed_form(x_nd.T, x_nd.shape[1],
                                        image_shape=image_shape, **kw)
    curve = rec.alignment(x_nd, y, v_dd)[:FLAGS.align_k]
    out[name] = np.asarray(curve).tolist()
    print(f"{dataset} alignment {name}: K=1 {out[name][0]:.1f}, "
          f"K={len(out[name])} {out[name][-1]:.1f}", flush=True)
    yield


# ----------------------------------------------------------------------------
# 3. Reconstruction vs perception over training.
# ----------------------------------------------------------------------------
def run_config(run, dataset):
  method, overrides = RUNS[run]
  cfg = experiments.load_config("compare_cpu",
                                f"{method},{dataset.split('/')[0]}")
  cfg.data.dataset = dataset
  experiments.apply_overrides(cfg, overrides)
  cfg.data.data_dir = FLAGS.data_dir
  if FLAGS.batch_size:
    cfg.batch_size = FLAGS.batch_size
  n = len(ssljax.data.load_source(dataset, "train", FLAGS.data_dir))
  if FLAGS.train_steps:
    cfg.num_steps = FLAGS.train_steps
  total = FLAGS.train_steps or cfg.num_epochs * (n // cfg.batch_size)
  cfg.checkpoint.every = max(1, total // FLAGS.num_points)
  cfg.checkpoint.keep = FLAGS.num_points + 1
  # Every checkpoint interval holds logged losses to average.
  cfg.log_every = min(cfg.log_every, cfg.checkpoint.every)
  return cfg


def logged_loss(rows, lo, hi):
  """Mean logged reconstruction loss over the rows with step in (lo, hi]:
  `recon_mse` (ae: all pixels) where logged, else `loss` (mae)."""
  key = "recon_mse" if any("recon_mse" in r for r in rows) else "loss"
  vals = [r[key] for r in rows if lo < r["step"] <= hi and key in r]
  return float(np.mean(vals)) if vals else None


def training_part(dataset, out):
  names = evals.parse("linear,knn")
  for run in FLAGS.runs:
    if run in out:
      continue
    wd = epath.Path(FLAGS.workdir) / "runs" / dataset / run
    t = time.time()
    train.train_and_evaluate(run_config(run, dataset), str(wd))
    minutes = (time.time() - t) / 60
    _, init, evaluator, _ = saved_runs.load(str(wd), 0)
    mngr = checkpoint.manager(str(wd), checkpoint.load_config(
        str(wd)).checkpoint, read_only=True)
    rows = [json.loads(l) for l in (wd / "metrics.jsonl").read_text(
    ).splitlines() if l.strip()]
    curve, prev = [], 0
    for step in [0] + sorted(mngr.all_steps()):
      v = init if step == 0 else checkpoint.restore_variables(mngr, step, init)
      r = evaluator.run(v, names)
      point = {"step": step, "linear": r["rep/label/true/linear_test"],
               "knn": r["rep/label/true/knn_k20"]}
      if RUNS[run][0] in ("ae", "mae") and step:
        point["recon_loss"] = logged_loss(rows, prev, step)
      curve.append(point)
      prev = step
      print(f"{dataset} {run} step {step}: {point}", flush=True)
    out[run] = {"curve": curve, "train_minutes": minutes}
    yield


# ----------------------------------------------------------------------------
# Figures.
# ----------------------------------------------------------------------------
def plot(results, out_dir):
  for ds, res in results.items():
    stem = ds.replace("/", "_")  # e.g. hierarchical_shapes/32_small
    if "pca" in res and "top" in res["pca"]:
      fig, ax = plt.subplots(figsize=(5, 3.5))
      pca = res["pca"]
      ps = sorted(pca["top"], key=float)
      ax.plot([float(p) for p in ps], [pca["top"][p] for p in ps], "o-",
              label="top subspace (share p of variance)")
      bs = sorted(pca.get("bottom", {}), key=float)
      ax.plot([float(p) for p in bs], [pca["bottom"][p] for p in bs], "s-",
              label="bottom subspace (share 1 − p)")
      if "full" in pca:
        ax.axhline(pca["full"], color="gray", ls=":", label="all pixels")
      ax.set(xlabel="p", ylabel="CNN test accuracy", title=f"{ds}: "
             "what a CNN reads from each PCA subspace")
      ax.legend(fontsize=7)
      _save(fig, out_dir / f"{stem}_pca.png")
    if res.get("alignment"):
      fig, ax = plt.subplots(figsize=(5, 3.5))
      for name, curve in res["alignment"].items():
        style = "-" if name == "clean" else ("--" if "noise" in name else ":")
        ax.plot(np.arange(1, len(curve) + 1), curve, style, label=name)
      ax.set(xscale="log", xlabel="K (directions of the optimal linear AE)",
             ylabel="task alignment (%)", title=f"{ds}: closed-form "
             "linear AEs")
      ax.legend(fontsize=5, ncol=2)
      _save(fig, out_dir / f"{stem}_alignment.png")
    if res.get("training"):
      fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
      for i, (run, r) in enumerate(res["training"].items()):
        c, color = r["curve"], f"C{i}"  # one colour per run, both panels
        steps = [p["step"] for p in c]
        a1.plot(steps, [p["linear"] for p in c], "o-", color=color,
                label=run)
        a1.plot(steps, [p["knn"] for p in c], "--", color=color)
        rl = [(p["step"], p["recon_loss"]) for p in c if p.get("recon_loss")]
        if rl:
          a2.plot([s for s, _ in rl], [v / rl[0][1] for _, v in rl], "o-",
                  color=color, label=run)
      a1.set(xlabel="step", ylabel="accuracy (solid linear, dashed kNN)",
             title=f"{ds}: perception")
      a2.set(xlabel="step", ylabel="train loss / first logged",
             title="reconstruction")
      a1.legend(fontsize=7)
      a2.legend(fontsize=7)
      _save(fig, out_dir / f"{stem}_training.png")


def _save(fig, path):
  fig.tight_layout()
  files.save_figure(fig, path)
  plt.close(fig)


def main(argv):
  del argv
  bad = (sorted(set(FLAGS.parts) - set(PARTS)) + sorted(set(FLAGS.runs) -
                                                        set(RUNS))
         + sorted(set(FLAGS.align) - set(ALIGN)))
  if bad:
    raise app.UsageError(f"Unknown parts/runs/corruptions {bad}; parts: "
                         f"{PARTS}, runs: {tuple(RUNS)}, corruptions: "
                         f"{tuple(ALIGN)}.")
  out_dir = epath.Path(FLAGS.workdir)
  out_dir.mkdir(parents=True, exist_ok=True)
  path = out_dir / "results.json"
  results = json.loads(path.read_text()) if path.exists() else {}
  if not FLAGS.replot:
    work = {"pca": pca_part, "alignment": alignment_part,
            "training": training_part}
    for part in FLAGS.parts:  # the cheap parts first, on every dataset
      for ds in FLAGS.datasets:
        out = results.setdefault(ds, {}).setdefault(part, {})
        for _ in work[part](ds, out):  # save after every finished cell
          files.write_atomic(path, json.dumps(results, indent=1))
  plot(results, out_dir)
  print(json.dumps({ds: r.get("pca") for ds, r in results.items()}))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
