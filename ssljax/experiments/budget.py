"""Budget curves: is a method that ends near its random init budget-bound?

  python -m ssljax.experiments.budget --workdir=/tmp/budget \
      --methods=byol,mveb,sag_vicreg,vicreg,simclr [--factor=4] [--seed=0]
  # The same runs with another optimizer (every method the same change;
  # here solo-learn's CIFAR VICReg LARS: lr 0.3 × batch/256, trust 0.02,
  # weight decay 1e-4, momentum 0.9, biases and norms excluded):
  python -m ssljax.experiments.budget --workdir=/tmp/budget_lars --factor=1 \
      --set=optimizer.name=lars,optimizer.base_lr=0.3,optimizer.momentum=0.9,\
optimizer.trust_coefficient=0.02,optimizer.weight_decay=1e-4

One run per method of configs/compare_cpu.py:METHOD,DATASET at --factor
times its epochs (the comparison budget is 1×), checkpointed at every
multiple of the 1× step count and evaluated at 1×, 2×, 4×, … (powers of
two up to --factor) and at step 0 (the random init, shared by every method
at a seed). Metrics: linear probe, kNN k = 20 and NCC on the fine labels;
with hierarchical_shapes, the family linear probe and the Spearman of the
fine-class centroids against the tree (ssljax.evals.hierarchy).

How the points compare: they are checkpoints of one run whose cosine
schedule spans the whole --factor budget (warm-up unchanged in epochs), so
at the 1× and 2× points the learning rate and an EMA method's momentum
have not annealed (at 1× of a 4× run the lr is ≈ 0.86 of its peak, at 2×
≈ 0.51). They show how the representation
improves with steps under a fixed schedule; the last point is a complete
run at --factor× the budget. A complete 1× run (annealed) is the
comparison's own cell: read both (docs/results/shapes_v3.md does).

--set applies dotted config overrides (KEY=VALUE, Python literals, else
strings) to every method, so a contrast treats all methods alike; the
overrides are part of the setup a resumed workdir must match. Resumable:
finished points are read back from WORKDIR/results.json, an interrupted
training resumes from its checkpoint.

Writes WORKDIR/runs/METHOD/seedS (the workdirs), WORKDIR/results.json
({"setup", "runs": {METHOD: {"train_minutes", "points": {"1": metrics,
"2": …}}}, "random_init": metrics}), WORKDIR/results.md (a table per
metric: method × budget) and WORKDIR/budget_linear.png.
"""

import json

from absl import app
from absl import flags
from etils import epath
import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import ssljax.data
from ssljax import experiments
from ssljax import files
from ssljax import results as ssljax_results
from ssljax import runtime
from ssljax import saved_runs
from ssljax import train

FLAGS = flags.FLAGS

METHODS = ("vicreg", "sag_vicreg", "simclr", "byol", "mveb", "barlow_twins",
           "nnclr", "swav", "dino", "ae", "mae", "ijepa")
# (column, result key); the hierarchy ones only where the dataset has them.
COLUMNS = (("linear", "rep/label/true/linear_test"),
           ("kNN k=20", "rep/label/true/knn_k20"),
           ("NCC", "rep/label/true/ncc_test"),
           ("family linear", "rep/coarse_label/true/linear_test"),
           ("Spearman (tree)", "rep/tree/true/spearman"))


def _define_flags():
  flags.DEFINE_string("workdir", None, "Output directory.")
  flags.DEFINE_list("methods", ["byol", "mveb", "sag_vicreg", "vicreg",
                                "simclr"], "Methods, run in this order.")
  flags.DEFINE_integer("factor", 4, "Budget of each run, in multiples of "
                       "the comparison's epochs (a power of two).")
  flags.DEFINE_integer("seed", 0, "cfg.seed of every run.")
  flags.DEFINE_string("dataset", "hierarchical_shapes",
                      "A dataset of configs/compare_cpu.py.")
  flags.DEFINE_list("set", [], "Dotted config overrides KEY=VALUE applied "
                    "to every method (e.g. optimizer.name=lars).")
  flags.DEFINE_integer("base_steps", None, "The 1× step count (default: "
                       "the config's epochs of the train split; smaller "
                       "for a smoke test).")
  flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: TFDS's).")
  flags.mark_flag_as_required("workdir")


def multiples(factor):
  """The budgets evaluated: 1, 2, 4, … up to `factor` (a power of two)."""
  if factor < 1 or factor & (factor - 1):
    raise ValueError(f"--factor must be a power of two >= 1, got {factor}.")
  return [2 ** i for i in range(factor.bit_length())]


def run_config(method, dataset, seed, factor, overrides, base_steps,
               data_dir=None):
  """compare_cpu's config for `factor` × `base_steps` steps, checkpointed at every
  multiple of `base_steps` and kept (step 0 too)."""
  cfg = experiments.load_config("compare_cpu",
                                f"{method},{dataset.split('/')[0]}")
  cfg.seed = seed
  cfg.data.dataset = dataset  # may name a builder config: NAME/CONFIG
  cfg.data.data_dir = data_dir
  experiments.apply_overrides(cfg, overrides)
  cfg.num_steps = factor * base_steps
  cfg.checkpoint.every = base_steps
  cfg.checkpoint.keep = factor + 2
  if dataset.startswith("hierarchical_shapes"):
    cfg.eval.coarse_label_keys = ("coarse_label", "super_label")
    cfg.eval.cli = "linear,knn,ncc,hierarchy"
  else:
    cfg.eval.cli = "linear,knn,ncc"
  return cfg


def _metrics(workdir, step):
  res, _ = saved_runs.evaluate(workdir, step)
  return {k: float(res[k]) for _, k in COLUMNS if k in res}


def markdown(results, factor):
  ms = multiples(factor)
  setup = results["setup"]
  lines = [f"Budget curves: `configs/compare_cpu.py:METHOD,"
           f"{setup['dataset']}`, seed {setup['seed']}, one run of "
           f"{factor}× the epochs per method, evaluated at "
           + ", ".join(f"{m}×" for m in ms) + f" ({setup['base_steps']} "
           "steps = 1×; the cosine schedule spans the whole run)."
           + (f" Overrides: {setup['set']}." if setup["set"] else "")]
  init = results.get("random_init", {})
  for col, key in COLUMNS:
    rows = [(m, r) for m, r in results["runs"].items()
            if any(key in p for p in r.get("points", {}).values())]
    if not rows:
      continue
    lines += [f"\n**{col}**\n", "| method | init | " + " | ".join(
        f"{m}×" for m in ms) + " |", "|---" * (len(ms) + 2) + "|"]
    for method, r in rows:
      cells = [f"{r['points'][str(m)][key]:.3f}" if str(m) in r["points"]
               else "—" for m in ms]
      lines.append(f"| {method} | " + (f"{init[key]:.3f}" if key in init
                                       else "—") + " | " + " | ".join(cells)
                   + " |")
  mins = {m: r.get("train_minutes") for m, r in results["runs"].items()}
  lines.append("\nTrain minutes: " + ", ".join(
      f"{m} {v:.1f}" for m, v in mins.items() if v is not None) + ".")
  return "\n".join(lines)


def plot(results, factor, path):
  ms = multiples(factor)
  fig, ax = plt.subplots(figsize=(5, 3.5))
  key = COLUMNS[0][1]
  for method, r in results["runs"].items():
    xs = [m for m in ms if str(m) in r.get("points", {})]
    ax.plot(xs, [r["points"][str(m)][key] for m in xs], "o-", label=method)
  if key in results.get("random_init", {}):
    ax.axhline(results["random_init"][key], color="gray", ls="--",
               label="random init")
  ax.set_xscale("log", base=2)
  ax.set_xticks(ms, [f"{m}×" for m in ms])
  ax.set_xlabel("budget (× comparison epochs)")
  ax.set_ylabel("fine linear probe (test)")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(str(path), dpi=120)
  plt.close(fig)


def main(argv):
  del argv
  runtime.quiet_library_logs(FLAGS.verbosity)
  bad = sorted(set(FLAGS.methods) - set(METHODS))
  if bad:
    raise app.UsageError(f"Unknown methods {bad}; valid: {METHODS}.")
  try:
    overrides = experiments.parse_overrides(FLAGS.set)
    ms = multiples(FLAGS.factor)
    for m in FLAGS.methods:  # a bad --set fails here, before any training
      experiments.apply_overrides(experiments.load_config(
          "compare_cpu", f"{m},{FLAGS.dataset.split('/')[0]}"), overrides)
  except (ValueError, KeyError, TypeError) as e:
    raise app.UsageError(str(e)) from e
  out = epath.Path(FLAGS.workdir)
  probe = experiments.load_config(
      "compare_cpu", f"{FLAGS.methods[0]},{FLAGS.dataset.split('/')[0]}")
  num_train = len(ssljax.data.load_source(FLAGS.dataset, "train",
                                          FLAGS.data_dir))
  base_steps = FLAGS.base_steps or int(
      probe.num_epochs * (num_train // probe.batch_size))
  setup = {"dataset": FLAGS.dataset, "seed": FLAGS.seed,
           "factor": FLAGS.factor, "set": FLAGS.set, "base_steps": base_steps}
  path = out / "results.json"
  results = json.loads(path.read_text()) if path.exists() else {}
  if results.get("setup", setup) != setup:
    raise app.UsageError(f"{path} was written with {results['setup']}, not "
                         f"{setup}: use another --workdir or the same flags.")
  results["setup"] = setup
  runs = results.setdefault("runs", {})

  def save():
    files.merge_json(path, results)  # another --methods' cells stay
    files.write_atomic(out / "results.md", markdown(results, FLAGS.factor))
    plot(results, FLAGS.factor, out / "budget_linear.png")

  for method in FLAGS.methods:
    r = runs.setdefault(method, {"points": {}})
    if len(r["points"]) == len(ms):
      continue
    wd = str(out / "runs" / method / f"seed{FLAGS.seed}")
    train.train_and_evaluate(run_config(
        method, FLAGS.dataset, FLAGS.seed, FLAGS.factor, overrides,
        base_steps, FLAGS.data_dir), wd)
    # The run's own step times: a resumed run counts every process's steps.
    r["train_minutes"] = ssljax_results.train_minutes(wd)
    if "random_init" not in results:
      results["random_init"] = _metrics(wd, 0)
    for m in ms:
      if str(m) not in r["points"]:
        r["points"][str(m)] = _metrics(wd, m * base_steps)
    print(f"{method}: " + ", ".join(
        f"{m}× {r['points'][str(m)][COLUMNS[0][1]]:.3f}" for m in ms),
          flush=True)
    save()
  print(markdown(results, FLAGS.factor))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
