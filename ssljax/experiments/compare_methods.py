"""Equal-budget comparison: MVEB, VICReg, SAG-VICReg, BYOL, SimCLR, AE on a CPU.

  python -m ssljax.experiments.compare_methods --workdir=/tmp/compare \
      [--datasets=mnist5k,hierarchical_shapes] [--methods=mveb,vicreg,...]

Trains configs/compare_cpu.py:METHOD,DATASET for every pair in WORKDIR/
DATASET/METHOD (resuming finished or interrupted runs), evaluates the final
checkpoint (linear probe, kNN k=20 and 200, NCC on the representation) and
the random initialization once per dataset (the encoder's init is the same
for every method: same seed, same parameter paths), and writes
WORKDIR/results.json and WORKDIR/results.md (a markdown table with the
command and the minutes each run took).
"""

import json
import time

from absl import app
from absl import flags
from etils import epath
from ssljax import eval_main
from ssljax import experiments
from ssljax import files
from ssljax import train

FLAGS = flags.FLAGS


def _define_flags():
  # Defined when run, so the experiments import side by side (--workdir).
  flags.DEFINE_string("workdir", None, "Root directory of the runs.")
  flags.DEFINE_list("datasets", ["mnist5k", "hierarchical_shapes"],
                    "Datasets.")
  flags.DEFINE_list("methods", ["mveb", "vicreg", "sag_vicreg", "byol",
                                "simclr", "ae"], "Methods (any of "
                    "configs/compare_cpu.py's, e.g. mae).")
  flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: TFDS's).")
  flags.mark_flag_as_required("workdir")


COLUMNS = (("linear", "rep/label/true/linear_test"),
           ("kNN k=20", "rep/label/true/knn_k20"),
           ("kNN k=200", "rep/label/true/knn_k200"),
           ("NCC", "rep/label/true/ncc_test"))


def get_config(arg):
  return experiments.load_config("compare_cpu", arg)


def run_all(workdir, datasets, methods, data_dir=None):
  results = {}
  for ds in datasets:
    for m in methods:
      cfg = get_config(f"{m},{ds}")
      cfg.data.data_dir = data_dir
      wd = str(epath.Path(workdir) / ds / m)
      t = time.perf_counter()
      train.train_and_evaluate(cfg, wd)
      minutes = (time.perf_counter() - t) / 60
      if m == methods[0]:
        results[f"{ds}/random_init"] = eval_main.evaluate(wd, 0)[0]
      r, _ = eval_main.evaluate(wd)
      r["train_minutes"] = minutes
      results[f"{ds}/{m}"] = r
      print(f"{ds} {m}: " + ", ".join(
          f"{name} {r[key]:.4f}" for name, key in COLUMNS), flush=True)
  return results


def markdown(results, datasets):
  lines = []
  for ds in datasets:
    lines += [f"\n{ds}\n", "| method | " + " | ".join(
        n for n, _ in COLUMNS) + " | train min |",
              "|---" * (len(COLUMNS) + 2) + "|"]
    for name, r in results.items():
      if name.startswith(ds + "/"):
        mins = r.get("train_minutes")
        tail = f" | {mins:.1f} |" if mins is not None else " | - |"
        lines.append(f"| {name.split('/')[1]} | " + " | ".join(
            f"{r[k]:.3f}" for _, k in COLUMNS) + tail)
  return "\n".join(lines)


def main(argv):
  del argv
  results = run_all(FLAGS.workdir, FLAGS.datasets, FLAGS.methods,
                    FLAGS.data_dir)
  table = markdown(results, FLAGS.datasets)
  for name, content in (("results.json", json.dumps(results, indent=1)),
                        ("results.md", table)):
    files.write_atomic(epath.Path(FLAGS.workdir) / name, content)
  print(table)


if __name__ == "__main__":
  _define_flags()
  app.run(main)
