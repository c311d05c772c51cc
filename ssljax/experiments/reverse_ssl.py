"""Reverse-engineering SSL (Ben-Shaul et al., NeurIPS 2023) on a CPU.

  python -m ssljax.experiments.reverse_ssl --workdir=/tmp/reverse_ssl
  python -m ssljax.experiments.reverse_ssl \
      --config=configs/reverse_ssl.py:mnist5k --workdir=/tmp/reverse_ssl_mnist

1. Pretrains per the config (VICReg; resumes a workdir that has checkpoints)
   keeping a checkpoint every few epochs.
2. Evaluates the random init (step 0) and every kept checkpoint with
   cfg.eval.cli: NCC train/test accuracy and CDNV at every label level
   (fine, coarse), for true and for permuted labels, over every layer, plus
   the hierarchy correlations and RankMe.
3. Writes WORKDIR/reverse_ssl/results.json ({"epochs": [...], "results":
   [{name: value} per checkpoint]}) and PNG plots:
     ncc_vs_epoch.png     NCC test accuracy per layer over training
     cdnv_vs_epoch.png    train CDNV per layer over training (log scale)
     by_layer.png         NCC train/test accuracy vs depth at the end
   each with true labels (solid) against random labels (dashed).
"""

import json

from absl import app
from absl import flags
from etils import epath
import matplotlib

matplotlib.use("Agg")  # files only; no display on a server
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
from ml_collections import config_flags
from ssljax import checkpoint
from ssljax import evals
from ssljax import experiments
from ssljax import files
from ssljax import saved_runs
from ssljax import train

FLAGS = flags.FLAGS


def _define_flags():
  # Defined when run, so the experiments import side by side (--workdir).
  config_flags.DEFINE_config_file(
      "config", experiments.config_file("reverse_ssl"), "Config file.",
      lock_config=True)
  flags.DEFINE_string("workdir", None, "Run directory.")
  flags.DEFINE_bool("replot", False, "Only redraw the plots from the "
                    "workdir's results.json.")
  flags.mark_flags_as_required(["workdir"])


def evaluate_checkpoints(workdir):
  """[(epoch, {name: value})] for step 0 and every kept checkpoint."""
  cfg, init, evaluator, _ = saved_runs.load(workdir, 0)
  steps_per_epoch = len(evaluator.train_src) // cfg.batch_size
  mngr = checkpoint.manager(workdir, cfg.checkpoint)
  names = evals.parse(cfg.eval.cli)
  out = []
  for step in [0] + sorted(mngr.all_steps()):
    variables = init if step == 0 else checkpoint.restore_variables(
        mngr, step, init)
    res = evaluator.run(variables, names)
    res.pop("online_probe_accuracy", None)
    out.append((step / steps_per_epoch, res))
    print(f"epoch {step / steps_per_epoch:5.1f}  NCC test (rep, fine) "
          f"true {res[f'rep/{evaluator.levels[0]}/true/ncc_test']:.3f} "
          f"random {res[f'rep/{evaluator.levels[0]}/random/ncc_test']:.3f}",
          flush=True)
  return out, evaluator.levels


def _layers(results):
  return evals.layer_order({k.split("/")[0] for k in results
                            if k.count("/") == 3})


def plot(curve, levels, out_dir):
  epochs = [e for e, _ in curve]
  final = curve[-1][1]
  layers = _layers(final)
  colors = plt.cm.viridis([i / max(len(layers) - 1, 1)
                           for i in range(len(layers))])
  paths = []
  for metric, fname, log in (("ncc_test", "ncc_vs_epoch.png", False),
                             ("cdnv_train", "cdnv_vs_epoch.png", True)):
    fig, axes = plt.subplots(1, len(levels), figsize=(5 * len(levels), 4),
                             squeeze=False)
    for ax, lv in zip(axes[0], levels):
      for color, layer in zip(colors, layers):
        for kind, style in (("true", "-"), ("random", "--")):
          ys = [r[f"{layer}/{lv}/{kind}/{metric}"] for _, r in curve]
          ax.plot(epochs, ys, style, color=color,
                  label=layer if kind == "true" else None)
      ax.set(title=f"{metric} ({lv}); dashed: random labels", xlabel="epoch",
             yscale="log" if log else "linear")
      ax.legend(fontsize=7)
    paths.append(_save(fig, out_dir, fname))
  fig, axes = plt.subplots(1, len(levels), figsize=(5 * len(levels), 4),
                           squeeze=False)
  for ax, lv in zip(axes[0], levels):
    for metric, marker in (("ncc_train", "o"), ("ncc_test", "s")):
      for kind, style in (("true", "-"), ("random", "--")):
        ax.plot(layers, [final[f"{l}/{lv}/{kind}/{metric}"] for l in layers],
                style, marker=marker, label=f"{metric}, {kind} labels")
    ax.set(title=f"NCC accuracy vs depth at epoch {epochs[-1]:.0f} ({lv})",
           ylim=(0, 1))
    ax.legend(fontsize=7)
  paths.append(_save(fig, out_dir, "by_layer.png"))
  return paths


def _save(fig, out_dir, name):
  fig.tight_layout()
  path = files.save_figure(fig, epath.Path(out_dir) / name)
  plt.close(fig)
  return path


def run_experiment(cfg, workdir):
  train.train_and_evaluate(cfg, workdir)
  curve, levels = evaluate_checkpoints(workdir)
  out_dir = epath.Path(workdir) / "reverse_ssl"
  path = out_dir / "results.json"
  files.write_atomic(path, json.dumps(
      {"levels": list(levels), "epochs": [e for e, _ in curve],
       "results": [r for _, r in curve]}, indent=1))
  return str(path), plot(curve, levels, out_dir)


def replot(workdir):
  out_dir = epath.Path(workdir) / "reverse_ssl"
  r = json.loads((out_dir / "results.json").read_text())
  return plot(list(zip(r["epochs"], r["results"])), r["levels"], out_dir)


def main(argv):
  del argv
  if FLAGS.replot:
    print("\n".join(["written:"] + replot(FLAGS.workdir)))
    return
  path, pngs = run_experiment(FLAGS.config, FLAGS.workdir)
  print("\n".join(["written:", path] + pngs))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
