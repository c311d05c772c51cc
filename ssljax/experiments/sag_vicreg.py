"""SAG-VICReg vs VICReg and the other methods of ssljax, on a CPU.

  python -m ssljax.experiments.sag_vicreg --workdir=/tmp/sag_vicreg
  python -m ssljax.experiments.sag_vicreg --workdir=/tmp/sag_vicreg --seeds=0 \
      --methods=vicreg,sag_vicreg --unseen_methods=   # a subset
  python -m ssljax.experiments.sag_vicreg --workdir=/tmp/sag_vicreg --replot
  python -m ssljax.experiments.sag_vicreg --workdir=/tmp/sag_lars \
      --set=optimizer.name=lars,optimizer.base_lr=0.3,optimizer.momentum=0.9,\
optimizer.trust_coefficient=0.02,optimizer.weight_decay=1e-4  # one recipe

Every run is configs/compare_cpu.py:METHOD,hierarchical_shapes (10 epochs =
390 steps at batch 256 on the 10k train images; width-8 ResNet-18, the same
augmentations and optimizer for every method) with cfg.seed = the seed; the
seed also changes the data order and augmentations. Two sets of runs:

  full    every --methods × --seeds, pretrained on all 24 fine classes;
          evaluated on the whole test split.
  unseen  every --unseen_methods × --seeds, pretrained with the classes
          --holdout_classes (of label key --holdout_key) removed from the
          training stream (data.holdout_*), for as many steps as a full run
          (the same compute; the smaller stream is seen more often);
          evaluated with the `unseen` modifier: the held-out classes alone
          (their train images fit the probes, their test images score).
          The LR warm-up (half an epoch) is then 13 steps instead of 19.

Why separate runs: the full runs' metrics must be those of a model that saw
every class (comparable with compare_methods and the paper's
in-distribution claims); a held-out run's "seen" subset would be a 16-class
problem on 2/3 of the data, another experiment. Why unseen runs for VICReg
and SAG-VICReg only by default: the claim under test (better on unseen
clusters) is SAG-VICReg's against VICReg; pass --unseen_methods to add the
others (3 runs each).

Held-out classes (default): whole families 2 and 5 (clover and cross, the
third family of each super-family; `--holdout_key=coarse_label
--holdout_classes=2,5`): 8 fine classes, the whole branch below each family
never seen, so the test is of new clusters, not of new details of known
silhouettes. Two families rather than one, one per super-family, so that
the held-out set keeps a tree (8 fine classes in 2 families) and the
hierarchy metrics and the family-level ARI are defined on it; on it the
super-family partition equals the family partition, so the unseen tables
leave the super level out (results.json has it).

Metrics, on the final checkpoint's representation (ssljax.evals names in
brackets): linear probe, kNN (k = 20, 200, T = 0.07) and NCC on the 24
fine classes, fit on train and scored on test [linear, knn, ncc]; Spearman,
Kendall τ-b and the cophenetic correlations of the fine-class centroids of
the train features against the three-level tree [hierarchy,
coarse_label_keys = coarse_label, super_label]; ARI of k-means and of an
average-linkage cut of the test features at each level's number of
classes, for each level [kmeans, agglomerative]; the label-free spectral
global structure SGS of the test features [spectral]. Unseen: the same on
the held-out classes alone. The random initialization (step 0; the
encoder's init is the same for every method at a seed) is evaluated once
per seed and set: row "random init". Evaluation randomness (k-means
starts, subsamples) is fixed (eval.random_seed = 0), so the spread over
seeds is that of training.

Default size: 10 methods × 3 seeds + 2 × 3 unseen = 36 training runs of
4–7 min on 2 idle CPU cores (AE 4.3, MVEB ≈ 6.8, the others ≈ 6), plus the
evaluations: under 1 min per full run and ≈ 2 min per unseen run (probes
on three subsets: all, unseen, seen), 6 random-init ones: ≈ 4.5 hours in
all. Cells run seed-major (every method at seed 0
first), each saved when done: an interrupted run resumes (finished cells
are read back from WORKDIR/results.json; a cell's training resumes from its
checkpoint).

Writes:
  WORKDIR/runs/{full,unseen}/METHOD/seedS     the training workdirs
  WORKDIR/results.json  {"setup", "runs": {"full/vicreg/seed0": {"metrics":
                        {ssljax.evals name: value}, "train_minutes",
                        "eval_minutes", "centroids"}}, "summary": {"full":
                        {method: {metric: {"mean", "std", "n"}}}, "unseen":
                        ...}} (std over seeds with ddof = 1; null for n = 1)
  WORKDIR/results.md    markdown tables, mean ± std over seeds
  WORKDIR/figures/{full,unseen}_METRIC.png  a bar chart per metric, mean
                        with ± std error bars (per-level metrics grouped)
  WORKDIR/figures/centroids{,_unseen}.png   2-D PCA of the fine-class
                        centroids (test features), coloured by family,
                        marker by super-family, VICReg and SAG-VICReg side
                        by side (the lowest seed); in the unseen figure
                        held-out classes are hollow

The tables and figures are drawn by ssljax.experiments.sag_vicreg_report
(which notebooks/sag_vicreg.py uses too).
"""

import json
import math
import time

from absl import app
from absl import flags
from etils import epath
import numpy as np
import ssljax.data
from ssljax import experiments
from ssljax import files
from ssljax import results as ssljax_results
from ssljax import runtime
from ssljax import saved_runs
from ssljax import train
from ssljax.experiments import sag_vicreg_report as report

# The defaults of --unseen_methods and --seeds: the notebook names the cells
# of a default run that a results.json lacks.
UNSEEN_METHODS = ("vicreg", "sag_vicreg")
SEEDS = (0, 1, 2)
EVALS = "linear,knn,ncc,hierarchy,kmeans,agglomerative,spectral"


def _define_flags():
  # Defined when run, so tests can import the module beside the other
  # experiments, which define --workdir too.
  flags.DEFINE_string("workdir", None, "Output directory.")
  flags.DEFINE_list("methods", list(report.METHODS),
                    "Methods of the full runs.")
  flags.DEFINE_list("unseen_methods", list(UNSEEN_METHODS),
                    "Methods of the held-out-class runs (may be empty).")
  flags.DEFINE_list("seeds", [str(s) for s in SEEDS], "Seeds (cfg.seed).")
  flags.DEFINE_string("dataset", "hierarchical_shapes", "TFDS name (a "
                      "config of hierarchical_shapes, e.g. "
                      "hierarchical_shapes/32_small for smoke tests; "
                      "hierarchical_shapes_v2 for version 2.0.0).")
  flags.DEFINE_enum("holdout_key", "coarse_label", list(report.LEVELS),
                    "Label key of --holdout_classes.")
  flags.DEFINE_list("holdout_classes", ["2", "5"], "Classes held out of the "
                    "unseen runs' pretraining (default: families clover and "
                    "cross).")
  flags.DEFINE_integer("train_steps", None, "Override the runs' length (for "
                       "smoke tests; default: the config's 10 epochs).")
  flags.DEFINE_integer("batch_size", None, "Override the runs' batch size.")
  flags.DEFINE_list("set", [], "Dotted config overrides KEY=VALUE applied "
                    "to every run (one recipe change for all methods, e.g. "
                    "the optimizer); recorded in the setup.")
  flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: TFDS's).")
  flags.DEFINE_bool("replot", False, "Only rewrite results.md and the "
                    "figures from results.json.")
  flags.mark_flags_as_required(["workdir"])


FLAGS = flags.FLAGS


# ----------------------------------------------------------------------------
# Runs.
# ----------------------------------------------------------------------------
def compare_cpu(method, dataset):
  return experiments.load_config("compare_cpu",
                                 f"{method},{dataset.split('/')[0]}")


def setup_of():
  """What the runs depend on: a resumed workdir must match it."""
  setup = {"dataset": FLAGS.dataset, "train_steps": FLAGS.train_steps,
           "batch_size": FLAGS.batch_size, "holdout_key": FLAGS.holdout_key,
           "holdout_classes": [int(c) for c in FLAGS.holdout_classes]}
  common = experiments.parse_overrides(FLAGS.set)
  if common:  # absent when empty: workdirs written before --set resume
    setup["set"] = common
  return setup


def run_config(method, seed, group, num_train):
  cfg = compare_cpu(method, FLAGS.dataset)
  experiments.apply_overrides(cfg, experiments.parse_overrides(FLAGS.set))
  cfg.seed = seed
  cfg.data.dataset = FLAGS.dataset
  cfg.data.data_dir = FLAGS.data_dir
  if FLAGS.batch_size:
    cfg.batch_size = FLAGS.batch_size
  full_steps = FLAGS.train_steps or int(cfg.num_epochs * (
      num_train // cfg.batch_size))
  if FLAGS.train_steps:
    cfg.num_steps = FLAGS.train_steps
  cfg.eval.coarse_label_keys = report.LEVELS[1:]
  cfg.eval.cli = EVALS
  if group == "unseen":
    cfg.data.holdout_key = FLAGS.holdout_key
    cfg.data.holdout_classes = tuple(int(c) for c in FLAGS.holdout_classes)
    cfg.eval.cli = EVALS + ",unseen"
    cfg.num_steps = full_steps  # the same steps as a full run
  return cfg


def centroids(te):
  """Fine-class centroids of the test representation, with each class's
  family and super-family."""
  x, y = np.asarray(te["x"]["rep"], np.float64), te["y"]
  fine = np.unique(np.asarray(y["label"]))
  first = [int(np.flatnonzero(np.asarray(y["label"]) == c)[0]) for c in fine]
  return {"fine": fine.tolist(),
          "coarse": [int(np.asarray(y["coarse_label"])[i]) for i in first],
          "super": [int(np.asarray(y["super_label"])[i]) for i in first],
          "mean": [x[np.asarray(y["label"]) == c].mean(0).round(5).tolist()
                   for c in fine]}


def evaluate(workdir, step=None):
  """(metrics, centroids) of a workdir's checkpoint (step 0: random init),
  with the evaluations of its config's eval.cli."""
  cfg, variables, evaluator, _ = saved_runs.load(workdir, step)
  tr, te = evaluator.features(variables)
  res = evaluator.run(variables, cfg.eval.cli, (tr, te))
  res.pop("online_probe_accuracy", None)
  return {k: float(v) for k, v in res.items()}, centroids(te)


def cells(methods, unseen_methods, seeds):
  """(name, group, method, seed), seed-major; random init after the runs
  whose workdirs it reads."""
  out = []
  for s in seeds:
    out += [(f"full/{m}/seed{s}", "full", m, s) for m in methods]
    out += [(f"unseen/{m}/seed{s}", "unseen", m, s) for m in unseen_methods]
    if methods:
      out.append((f"full/random_init/seed{s}", "full", "random_init", s))
    if unseen_methods:
      out.append((f"unseen/random_init/seed{s}", "unseen", "random_init", s))
  return out


def run_cell(group, method, seed, methods, unseen_methods, num_train):
  root = epath.Path(FLAGS.workdir) / "runs" / group
  if method == "random_init":  # step 0 of the group's first method
    first = (methods if group == "full" else unseen_methods)[0]
    t = time.time()
    m, c = evaluate(str(root / first / f"seed{seed}"), 0)
    return {"metrics": m, "centroids": c,
            "eval_minutes": (time.time() - t) / 60}
  wd = str(root / method / f"seed{seed}")
  t = time.time()
  try:
    train.train_and_evaluate(run_config(method, seed, group, num_train), wd)
  except train.NonFiniteError as e:  # recorded; the other cells go on
    return {"error": str(e), "train_minutes": (time.time() - t) / 60}
  # The run's own step times: a resumed run counts every process's steps.
  minutes = ssljax_results.train_minutes(wd)
  t = time.time()
  m, c = evaluate(wd)
  return {"metrics": m, "centroids": c, "train_minutes": minutes,
          "eval_minutes": (time.time() - t) / 60}


# ----------------------------------------------------------------------------
# Main.
# ----------------------------------------------------------------------------
def write(results, out):
  """results.json merged with what another invocation wrote there meanwhile
  (files.merge_json), its summary over every cell; `results` updated."""
  files.merge_json(out / "results.json", results)
  results["summary"] = report.aggregate(results["runs"])
  files.merge_json(out / "results.json", results)


def main(argv):
  del argv
  runtime.quiet_library_logs(FLAGS.verbosity)
  bad = sorted(set(FLAGS.methods + FLAGS.unseen_methods)
               - set(report.METHODS))
  if bad:
    raise app.UsageError(f"Unknown methods {bad}; valid: {report.METHODS}.")
  if FLAGS.dataset.split("/")[0].split(":")[0] not in (
      "hierarchical_shapes", "hierarchical_shapes_v2"):
    raise app.UsageError("--dataset must be hierarchical_shapes (3.0.0), "
                         "hierarchical_shapes_v2 (2.0.0) or one of their "
                         "configs: the metrics need their three levels.")
  out = epath.Path(FLAGS.workdir)
  path = out / "results.json"
  results = json.loads(path.read_text()) if path.exists() else {}
  if FLAGS.replot and not results:
    raise app.UsageError(f"--replot: no {path}.")
  if not FLAGS.replot:
    try:
      setup = setup_of()
      for m in set(FLAGS.methods + FLAGS.unseen_methods):  # before training
        experiments.apply_overrides(compare_cpu(m, FLAGS.dataset),
                                    setup.get("set", {}))
    except (ValueError, KeyError, TypeError) as e:
      raise app.UsageError(f"--set: {e}") from e
    if results.get("setup", setup) != setup:
      raise app.UsageError(
          f"{path} was written with {results['setup']}, not {setup}: use "
          "another --workdir or the same flags.")
    results.setdefault("setup", setup)
    runs = results.setdefault("runs", {})
    seeds = [int(s) for s in FLAGS.seeds]
    num_train = len(ssljax.data.load_source(FLAGS.dataset, "train",
                                            FLAGS.data_dir))
    todo = [c for c in cells(FLAGS.methods, FLAGS.unseen_methods, seeds)
            if c[0] not in runs]
    for i, (name, group, method, seed) in enumerate(todo):
      print(f"[{i + 1}/{len(todo)}] {name}", flush=True)
      runs[name] = run_cell(group, method, seed, FLAGS.methods,
                            FLAGS.unseen_methods, num_train)
      m = runs[name].get("metrics", {})
      k = "true" if group == "full" else "unseen"
      print(f"{name}: " + (runs[name].get("error") or ", ".join(
          f"{c} {m[key]:.3f}" for c, key in (
              ("linear", f"rep/label/{k}/linear_test"),
              ("kNN", f"rep/label/{k}/knn_k20"),
              ("Spearman", f"rep/tree/{k}/spearman"))
          if key in m and math.isfinite(m[key]))), flush=True)
      write(results, out)  # after every cell
  write(results, out)
  table = report.markdown(results)
  files.write_atomic(out / "results.md", table)
  paths = report.plot(results, out / "figures")
  print(table)
  print("\n".join(["written:", str(path), str(out / "results.md")] + paths))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
