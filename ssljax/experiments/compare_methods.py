"""Equal-budget comparison: MVEB, VICReg, SAG-VICReg, BYOL, SimCLR, AE on a CPU.

  python -m ssljax.experiments.compare_methods --workdir=/tmp/compare \
      [--datasets=mnist5k,hierarchical_shapes] [--methods=mveb,vicreg,...] \
      [--seeds=0,1,2]
  # One fair sweep of each method's key coefficient, on a validation split:
  python -m ssljax.experiments.compare_methods --workdir=/tmp/sweep \
      --split=validation --sweep
  # SAG-VICReg's pairing and MAE's recipe: their GRIDS, on validation too:
  python -m ssljax.experiments.compare_methods --workdir=/tmp/sweep_sag \
      --split=validation --sweep --methods=vicreg,sag_vicreg,mae \
      --factors=0.1,1,10 --datasets=hierarchical_shapes
  # Any of these with another recipe for every cell (here LARS):
  #   --set=optimizer.name=lars,optimizer.base_lr=0.3,...
  # The tuned table: each method at its best validation value, on test:
  python -m ssljax.experiments.compare_methods --workdir=/tmp/tuned \
      --seeds=0,1,2 --tuned_from=/tmp/sweep/results.json

Trains configs/compare_cpu.py:METHOD,DATASET (cfg.seed = the seed, which
also sets the data order and augmentations) for every cell in
WORKDIR/DATASET/CELL/seedS (resuming finished or interrupted runs),
evaluates the final checkpoint (linear probe, kNN k=20 and 200, NCC on the
representation) and the random initialization once per dataset, seed and
encoder (cfg.model: every ResNet method starts from the same init at a
seed; a ViT, or other patches, from its own, "random_init:CELL", named in
each run's "init"), and writes
WORKDIR/results.json ({"runs": {"DS/CELL/seedS": metrics}, "summary":
{DS: {CELL: {column: {"mean", "std", "n"}}}}}, std over seeds with
ddof = 1) and WORKDIR/results.md (mean ± std tables, the minutes each
cell took). Both are rewritten after every run, so they can be read while
it goes.

--split=validation pretrains and fits the probes on the first 80% of the
train split and scores on the last 20% (`train[:80%]` / `train[80%:]`):
hyperparameters are chosen there, never on the test split. --sweep runs
each method over one coefficient (DEFAULTS), at the same factors of its
published default for every method (--factors, default 0.1, 0.3, 1, 3,
10; for BYOL's EMA base, of 1 − base), so no method gets a finer search
than another. SAG-VICReg's pairing (α, walk length; nothing published)
and MAE's recipe (patch, decoder depth, mask ratio) have several knobs, so
their sweeps are GRIDS' cells instead: 3 each, as many as the coarse grid
--factors=0.1,1,10 gives a one-coefficient method.
--tuned_from reads such a sweep's results.json and runs each method at the
setting with the best mean validation linear-probe accuracy.
"""

import ast
import json
import time

from absl import app
from absl import flags
from etils import epath
import numpy as np
from ssljax import experiments
from ssljax import files
from ssljax import saved_runs
from ssljax import train

FLAGS = flags.FLAGS

COLUMNS = (("linear", "rep/label/true/linear_test"),
           ("kNN k=20", "rep/label/true/knn_k20"),
           ("kNN k=200", "rep/label/true/knn_k200"),
           ("NCC", "rep/label/true/ncc_test"))
SPLITS = {"test": ("train", "test"),
          "validation": ("train[:80%]", "train[80%:]")}
FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0)
# method -> (config key of its one key coefficient, its default). Published
# defaults: VICReg invariance 25, MVEB λ 0.01, SimCLR temperature 0.1;
# BYOL's EMA base at this budget 0.99 (configs/compare_cpu.py), swept on
# 1 − base.
DEFAULTS = {"vicreg": ("loss.sim_coeff", 25.0), "mveb": ("loss.lambd", 0.01),
            "simclr": ("loss.temperature", 0.1), "byol": ("ema.base", 0.99)}


def sweep_values(method, factors=FACTORS):
  """(config key, [values]): `method`'s default times each factor (for
  BYOL's EMA base, 1 − base times each factor)."""
  key, default = DEFAULTS[method]
  if key == "ema.base":
    return key, [round(1 - (1 - default) * f, 6) for f in factors]
  return key, [round(default * f, 9) for f in factors]


SWEEP = {m: sweep_values(m) for m in DEFAULTS}
# Methods swept over a fixed set of settings. SAG-VICReg: its default
# (α = 0.5, 3-step walk) and one step along each knob towards fewer
# cross-class partners (the logged partners of the comparison share the
# anchor's fine class 6–22% of the time): α = 0.1, and a 1-step walk
# (direct kNN neighbours).
GRIDS = {"sag_vicreg": ({"pairing.weight": 0.5, "pairing.steps": 3},
                        {"pairing.weight": 0.1, "pairing.steps": 3},
                        {"pairing.weight": 0.5, "pairing.steps": 1}),
         # MAE: one step from configs/compare_cpu.py's recipe (patch 4,
         # mask 0.75, decoder depth 2) along each knob, cheapest first:
         # coarser patches, the deeper decoder that MAE's ablation finds
         # best for linear probing, less masking (towards the AE, which
         # beats its init at this budget).
         "mae": ({"model.patch_size": 8},
                 {"mae.decoder_depth": 4},
                 {"mae.mask_ratio": 0.5})}


def cell_name(method, setting):
  """"sag_vicreg/pairing.weight=0.1,pairing.steps=3" for {key: value}."""
  return f"{method}/" + ",".join(f"{k}={v:g}" for k, v in setting.items())


def parse_cell(cell):
  """cell_name's inverse: (method, {key: value}); values are Python
  literals again (3 stays an int, as an int config field needs)."""
  method, setting = cell.split("/", 1)
  return method, {k: ast.literal_eval(v) for k, v in
                  (item.split("=") for item in setting.split(","))}


def _define_flags():
  # Defined when run, so the experiments import side by side (--workdir).
  flags.DEFINE_string("workdir", None, "Root directory of the runs.")
  flags.DEFINE_list("datasets", ["mnist5k", "hierarchical_shapes"],
                    "Datasets.")
  flags.DEFINE_list("methods", ["mveb", "vicreg", "sag_vicreg", "byol",
                                "simclr", "ae"], "Methods (any of "
                    "configs/compare_cpu.py's, e.g. mae).")
  flags.DEFINE_list("seeds", ["0"], "Seeds (cfg.seed).")
  flags.DEFINE_enum("split", "test", list(SPLITS), "Where the probes score: "
                    "test, or validation (the last 20% of train, held out "
                    "of pretraining too).")
  flags.DEFINE_bool("sweep", False, "Run each method of SWEEP over its "
                    "coefficient's values.")
  flags.DEFINE_list("factors", [f"{f:g}" for f in FACTORS], "--sweep: the "
                    "factors of each method's default (the same for every "
                    "method).")
  flags.DEFINE_string("tuned_from", None, "A --sweep run's results.json: "
                      "run each method at its best validation value.")
  flags.DEFINE_list("set", [], "Dotted config overrides KEY=VALUE applied "
                    "to every cell before its own (e.g. optimizer.name=lars).")
  flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: TFDS's).")
  flags.mark_flag_as_required("workdir")


def get_config(arg):
  return experiments.load_config("compare_cpu", arg)


def cells(methods, sweep=False, tuned=None, factors=FACTORS):
  """[(cell name, method, {config key: value})]: the default of each method,
  or its sweep (at `factors`, or GRIDS' settings; methods without a sweep
  keep their default), or the `tuned` {method: {key: value}}."""
  out = []
  for m in methods:
    if sweep and m in DEFAULTS:
      key, values = sweep_values(m, factors)
      out += [(cell_name(m, {key: v}), m, {key: v}) for v in values]
    elif sweep and m in GRIDS:
      out += [(cell_name(m, s), m, dict(s)) for s in GRIDS[m]]
    elif tuned and m in tuned:
      out.append((cell_name(m, tuned[m]), m, dict(tuned[m])))
    else:
      out.append((m, m, {}))
  return out


def best_values(sweep_results, dataset):
  """{method: {key: value}}, the setting with the best mean validation
  linear accuracy of a --sweep run on `dataset` (ties: the first in the
  sweep's order)."""
  if sweep_results.get("split") != "validation":
    raise ValueError("--tuned_from must be a --split=validation --sweep run "
                     "(choosing on the test split would tune on the test "
                     f"set); got split {sweep_results.get('split')!r}.")
  best = {}
  for cell, cols in sweep_results["summary"].get(dataset, {}).items():
    if "=" not in cell or cell.startswith("random_init"):
      continue  # a default, or the init of a cell's own encoder
    method, setting = parse_cell(cell)
    acc = cols["linear"]["mean"]
    if method not in best or acc > best[method][0]:
      best[method] = (acc, setting)
  return {m: setting for m, (_, setting) in best.items()}


def configure(method, dataset, seed, overrides, split, data_dir=None,
              common=None):
  """The cell's config: `common` (--set, every cell) then its overrides."""
  cfg = get_config(f"{method},{dataset}")
  cfg.seed = seed
  cfg.data.data_dir = data_dir
  cfg.data.train_split, cfg.data.eval_split = SPLITS[split]
  for o in (common or {}), overrides:
    experiments.apply_overrides(cfg, o)
  return cfg


def summarize(runs, datasets):
  """{DS: {CELL: {column: {"mean", "std", "n"}}}} over the seeds of runs
  named DS/CELL/seedS (DS may hold a "/": hierarchical_shapes/64)."""
  groups = {}
  for name, r in runs.items():
    ds = max((d for d in datasets if name.startswith(d + "/")), key=len)
    cell = name[len(ds) + 1:].rsplit("/", 1)[0]
    groups.setdefault(ds, {}).setdefault(cell, []).append(r)
  out = {}
  for ds, by_cell in groups.items():
    out[ds] = {}
    for cell, rs in by_cell.items():
      cols = {}
      for col, key in COLUMNS + (("train min", "train_minutes"),):
        v = np.array([r[key] for r in rs if r.get(key) is not None], float)
        if v.size:
          cols[col] = {"mean": float(v.mean()), "n": int(v.size),
                       "std": float(v.std(ddof=1)) if v.size > 1 else None}
      out[ds][cell] = cols
  return out


def markdown(summary, split, common=None):
  lines = [f"(probes scored on the {split} split; mean ± std over seeds, "
           "n = seeds" + (f"; every cell with {common}" if common else "")
           + ")"]
  for ds, by_cell in summary.items():
    lines += [f"\n{ds}\n", "| cell | n | " + " | ".join(
        n for n, _ in COLUMNS) + " | train min |",
              "|---" * (len(COLUMNS) + 3) + "|"]
    for cell, cols in by_cell.items():
      def fmt(c, digits=3):
        if c not in cols:
          return "-"
        m, sd = cols[c]["mean"], cols[c]["std"]
        return f"{m:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd else "")
      n = max(c["n"] for c in cols.values())
      lines.append(f"| {cell} | {n} | " + " | ".join(
          fmt(c) for c, _ in COLUMNS) + f" | {fmt('train min', 1)} |")
  return "\n".join(lines)


def run_all(workdir, datasets, methods, seeds=(0,), split="test",
            sweep=False, tuned_from=None, data_dir=None, factors=FACTORS,
            common=None):
  root = epath.Path(workdir)
  sweep_results = json.loads(epath.Path(tuned_from).read_text()) \
      if tuned_from else None
  out = {"split": split, "set": common or {}, "runs": {}}
  for ds in datasets:
    tuned = best_values(sweep_results, ds) if sweep_results else None
    for seed in seeds:
      encoders = {}  # cfg.model -> its random init's name
      for cell, method, overrides in cells(methods, sweep, tuned, factors):
        cfg = configure(method, ds, int(seed), overrides, split, data_dir,
                        common)
        wd = str(root / ds / cell.replace("/", "_") / f"seed{seed}")
        t = time.perf_counter()
        train.train_and_evaluate(cfg, wd)
        minutes = (time.perf_counter() - t) / 60
        # Every encoder's own init (the first one's is "random_init"):
        # a ViT cell, or one with other patches, starts elsewhere.
        encoder = json.dumps(cfg.model.to_dict(), sort_keys=True)
        if encoder not in encoders:
          encoders[encoder] = "random_init" + (f":{cell}" if encoders
                                               else "")
          out["runs"][f"{ds}/{encoders[encoder]}/seed{seed}"] = \
              saved_runs.evaluate(wd, 0)[0]
        r, _ = saved_runs.evaluate(wd)
        r["train_minutes"] = minutes
        r["init"] = encoders[encoder]  # the init this cell is read against
        out["runs"][f"{ds}/{cell}/seed{seed}"] = r
        print(f"{ds} {cell} seed {seed}: " + ", ".join(
            f"{name} {r[key]:.4f}" for name, key in COLUMNS), flush=True)
        out["summary"] = summarize(out["runs"], datasets)
        for name, content in (("results.json", json.dumps(out, indent=1)),
                              ("results.md", markdown(out["summary"],
                                                      split, common))):
          files.write_atomic(root / name, content)
  return out


def main(argv):
  del argv
  if FLAGS.sweep and FLAGS.tuned_from:
    raise app.UsageError("--sweep and --tuned_from exclude each other.")
  if FLAGS.sweep and FLAGS.split != "validation":
    raise app.UsageError("--sweep chooses hyperparameters: run it with "
                         "--split=validation, never on the test split.")
  try:
    common = experiments.parse_overrides(FLAGS.set)
    for ds in FLAGS.datasets:  # a bad --set fails here, before any training
      for _, method, overrides in cells(FLAGS.methods, FLAGS.sweep):
        configure(method, ds, 0, overrides, FLAGS.split, common=common)
  except (ValueError, KeyError, TypeError) as e:
    raise app.UsageError(str(e)) from e
  out = run_all(FLAGS.workdir, FLAGS.datasets, FLAGS.methods, FLAGS.seeds,
                FLAGS.split, FLAGS.sweep, FLAGS.tuned_from, FLAGS.data_dir,
                [float(f) for f in FLAGS.factors], common)
  print(markdown(out["summary"], FLAGS.split, common))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
