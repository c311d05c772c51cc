"""The SAG-VICReg toy's report: results.md's tables and sag_toy.png.

`ssljax.experiments.sag_toy` runs the experiment (its docstring: the
command, the data, the metrics and the files written) and calls these on
its results dict: `summarize` for results.json's "summary", `markdown` for
results.md, `plot` for the figure. Rows are the methods of
results.json's runs (NAMES), columns its metric keys (COLUMNS).
"""

from etils import epath
import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
from ssljax import files

# Display names of the rows, in table order: the last part of
# results.json's run names (input, random_init and sag_toy's METHODS).
NAMES = {"input": "input x", "random_init": "random init",
         "vicreg": "VICReg", "sag_vicreg": "SAG-VICReg"}
# (table, column, metric key); the keys of results.json's "metrics".
COLUMNS = [(t, c, k) for t, cols in (
    ("unseen cluster", (("kNN", "unseen/knn"), ("NCC", "unseen/ncc"),
                        ("placement kNN", "placement/knn"),
                        ("placement NCC", "placement/ncc"))),
    ("all classes", (("kNN", "all/knn"), ("NCC", "all/ncc"))),
    ("hierarchy", (("Spearman", "tree/spearman"), ("Kendall", "tree/kendall"),
                   ("cophenetic (tree)", "tree/cophenetic_tree"),
                   ("ARI coarse", "agglo_ari/coarse"),
                   ("ARI super", "agglo_ari/super"), ("SGS", "sgs"))),
    ("walk partners", (("cross", "partners/cross"),
                       ("same fine", "partners/same_fine"),
                       ("same coarse", "partners/same_coarse"),
                       ("same super", "partners/same_super"))))
           for c, k in cols]


def summarize(runs):
  """{method: {metric: {"mean", "std" (ddof = 1; None for one), "n"}}}."""
  vals = {}
  for name, run in runs.items():
    method = name.split("/")[-1]
    for key, v in run["metrics"].items():
      vals.setdefault(method, {}).setdefault(key, []).append(v)
  return {m: {k: {"mean": float(np.mean(v)), "n": len(v),
                  "std": float(np.std(v, ddof=1)) if len(v) > 1 else None}
              for k, v in ks.items()} for m, ks in vals.items()}


def _fmt(s):
  return (f"{s['mean']:.3f}" if s["std"] is None
          else f"{s['mean']:.3f} ± {s['std']:.3f}")


def markdown(results):
  summ, runs = results["summary"], results["runs"]
  order = [m for m in NAMES if m in summ]
  seeds = sorted({int(n.split("/")[0][4:]) for n in runs if "/" in n})
  d = results["setup"]["data"]
  lines = [f"`python -m ssljax.experiments.sag_toy`: {len(seeds)} seed(s), "
           f"{results['setup']['steps']} steps, data R_s {d['r_super']}, R_c "
           f"{d['r_cluster']}, R_f {d['r_sub']}, noise {d['noise']}; mean ± "
           "std (ddof = 1) over seeds (input x: one row, no training)."]
  for table in dict.fromkeys(t for t, _, _ in COLUMNS):
    cols = [(c, k) for t, c, k in COLUMNS if t == table]
    lines += ["", f"**{table}**", "",
              "| | " + " | ".join(c for c, _ in cols) + " |",
              "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {NAMES[m]} | " + " | ".join(_fmt(summ[m][k]) for _, k in
                                             cols) + " |" for m in order]
  # Named here, not sag_toy.METHODS: sag_toy imports this module.
  if all(m in summ for m in ("vicreg", "sag_vicreg")):
    lines += ["", "**SAG-VICReg − VICReg** (spread: the larger std; wins: "
              "seeds where SAG-VICReg is higher)", "",
              "| metric | Δ | spread | wins |", "|---|---|---|---|"]
    for table, col, k in COLUMNS[:12]:
      a, b = summ["vicreg"][k], summ["sag_vicreg"][k]
      spread = max(a["std"] or 0.0, b["std"] or 0.0)
      wins = sum(runs[f"seed{s}/sag_vicreg"]["metrics"][k]
                 > runs[f"seed{s}/vicreg"]["metrics"][k] for s in seeds
                 if f"seed{s}/vicreg" in runs and f"seed{s}/sag_vicreg" in runs)
      lines.append(f"| {table}: {col} | {b['mean'] - a['mean']:+.3f} | "
                   f"{spread:.3f} | {wins}/{min(a['n'], b['n'])} |")
  return "\n".join(lines) + "\n"


def pca_2d(x_nd):
  x = x_nd - x_nd.mean(0)
  return x @ np.linalg.svd(x, full_matrices=False)[2][:2].T


def plot(results, data, workdir):
  workdir = epath.Path(workdir)
  seed, te = min(results["setup"]["seeds"]), data["test"]
  fig = plt.figure(figsize=(12, 7))
  held = te["coarse"] == results["setup"]["data"]["holdout"]
  colors = plt.get_cmap("tab10")(te["coarse"] % 10)
  for i, m in enumerate(NAMES):  # input, random init, then the methods
    ax = fig.add_subplot(2, 4, i + 1)
    path = workdir / f"emb_seed{seed}_{m}.npy"
    if m != "input" and not path.exists():
      continue
    z = pca_2d(te["x"] if m == "input" else np.load(path))
    ax.scatter(*z[~held].T, c=colors[~held], s=4, alpha=0.5, lw=0)
    # Green is the held-out cluster's own tab10 colour, unused by the rest.
    for b, (mark, col) in enumerate((("x", "k"), ("+", "tab:green"))):
      sub = held & (te["fine"] % 2 == b)
      ax.scatter(*z[sub].T, c=col, s=10, marker=mark, lw=0.6,
                 label=f"held-out sub-cluster {b}")
    run = "input" if m == "input" else f"seed{seed}/{m}"
    met = results["runs"].get(run, {}).get("metrics", {})
    ax.set_title(f"{NAMES[m]}" + ("" if m == "input" else f" (seed {seed})")
                 + f"\nunseen kNN {met.get('unseen/knn', np.nan):.2f}, "
                 f"Spearman {met.get('tree/spearman', np.nan):.2f}",
                 fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
    if i == 0:
      ax.legend(fontsize=7, loc="best")
  ax = fig.add_subplot(2, 1, 2)
  summ, cols = results["summary"], COLUMNS[:12]
  order = [m for m in NAMES if m in summ]
  width = 0.8 / len(order)
  for j, m in enumerate(order):
    s = [summ[m][k] for _, _, k in cols]
    ax.bar(np.arange(len(cols)) + j * width, [v["mean"] for v in s], width,
           yerr=[v["std"] or 0 for v in s], label=NAMES[m], capsize=2)
  ax.set_xticks(np.arange(len(cols)) + 0.4 - width / 2)
  short = {"unseen cluster": "unseen\n", "all classes": "all\n"}
  ax.set_xticklabels([short.get(t, "") + c.replace(" ", "\n") for t, c, _
                      in cols], fontsize=8)
  ax.axhline(0, color="k", lw=0.5)
  ax.set_ylim(top=1.25)  # room for the legend above the bars
  ax.legend(fontsize=8, ncol=len(order), loc="upper center")
  fig.suptitle("Top: PCA of the test representations (colour: coarse "
               "cluster; black x / green +: the held-out cluster's two "
               "sub-clusters). Bottom: mean ± std over seeds", fontsize=10)
  fig.tight_layout()
  out = files.save_figure(fig, workdir / "sag_toy.png", dpi=80)
  plt.close(fig)
  return out

