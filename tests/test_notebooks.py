"""Every notebook in notebooks/ runs top to bottom with nbclient, on the
`python3` kernel of this environment, against a tiny run (quickstart) or a
results.json in the experiment's schema (the others); a cell error fails.
The committed notebooks carry outputs and match their paired .py scripts."""
import glob
import os
import sys
import tempfile

import pytest

from tests import helpers

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
jupytext = pytest.importorskip("jupytext")

NOTEBOOKS = os.path.join(helpers.ROOT, "notebooks")
# What the notebooks' parameter cells read.
ENV = {"quickstart": "SSLJAX_WORKDIR", "reverse_ssl": "SSLJAX_REVERSE_SSL",
       "learning_by_reconstruction": "SSLJAX_LBR",
       "rate_distortion": "SSLJAX_RD", "sag_vicreg": "SSLJAX_SAG"}
CHECK = "import sys; print(sys.executable, end='')"


def test_every_notebook_is_tested_and_paired():
  names = sorted(os.path.basename(p)[:-6] for p in
                 glob.glob(os.path.join(NOTEBOOKS, "*.ipynb")))
  assert names == sorted(ENV)
  for name in names:
    nb = nbformat.read(os.path.join(NOTEBOOKS, f"{name}.ipynb"), as_version=4)
    py = jupytext.read(os.path.join(NOTEBOOKS, f"{name}.py"))
    cells = lambda n: [(c.cell_type, c.source.strip()) for c in n.cells]
    assert cells(nb) == cells(py), f"{name}.py and .ipynb differ: run " \
        f"`jupytext --sync notebooks/{name}.ipynb`"
    # Committed with the outputs of a full run, and no error among them.
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), name
    assert not [o for c in code for o in c.outputs
                if o.output_type == "error"], name
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and ENV[name] in params[0].source


def _run(name, monkeypatch, tmp_path, env):
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  # The kernel compiles the programs of the tests (conftest.py): same cache.
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", os.path.join(
      tempfile.gettempdir(), "ssljax_test_jax_cache"))
  monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
  nb = nbformat.read(os.path.join(NOTEBOOKS, f"{name}.ipynb"), as_version=4)
  for c in nb.cells:
    if c.cell_type == "code":
      c.outputs, c.execution_count = [], None
  nb.cells.append(nbformat.v4.new_code_cell(CHECK))
  client = nbclient.NotebookClient(
      nb, kernel_name="python3", timeout=300,
      resources={"metadata": {"path": str(tmp_path)}})
  client.execute()  # raises CellExecutionError at the first failing cell
  # The kernel was this environment's Python, not another one on the PATH.
  assert nb.cells[-1].outputs[0].text == sys.executable
  return nb


def _images(nb):
  return sum("image/png" in o.get("data", {}) for c in nb.cells
             if c.cell_type == "code" for o in c.outputs)


def _text(nb):
  return "".join(o.get("text", "") + str(o.get("data", {}).get(
      "text/markdown", "")) for c in nb.cells if c.cell_type == "code"
                 for o in c.outputs)


def test_quickstart(tiny_workdir, monkeypatch, tmp_path):
  nb = _run("quickstart", monkeypatch, tmp_path,
            {"SSLJAX_WORKDIR": tiny_workdir, "SSLJAX_MAP_POINTS": "200"})
  # curves, 2-D maps, retrieval grids of random init and trained
  assert _images(nb) == 4
  text = _text(nb)
  assert "| linear_probe_accuracy |" in text and "precision@8" in text
  assert "labels ['label', 'coarse_label', 'super_label']" in text


def test_reverse_ssl(tiny_workdir, monkeypatch, tmp_path):
  helpers.fake_reverse_ssl_results(tiny_workdir, str(tmp_path / "run"))
  nb = _run("reverse_ssl", monkeypatch, tmp_path,
            {"SSLJAX_REVERSE_SSL": str(tmp_path / "run")})
  assert _images(nb) == 4


def test_learning_by_reconstruction(monkeypatch, tmp_path):
  path = helpers.fake_lbr_results(str(tmp_path / "results.json"))
  nb = _run("learning_by_reconstruction", monkeypatch, tmp_path,
            {"SSLJAX_LBR": path})
  assert _images(nb) == 3  # pca, alignment, training of the first dataset
  assert "not drawn: mask 0.75 patch 8" in _text(nb)


def test_rate_distortion(monkeypatch, tmp_path):
  path = helpers.fake_rd_results(str(tmp_path / "results.json"))
  nb = _run("rate_distortion", monkeypatch, tmp_path, {"SSLJAX_RD": path})
  assert _images(nb) == 2  # ravine depth, rate-distortion + probes
  text = _text(nb)
  assert "| rdae | 1.00e-03 | 0.250 | 1.00 |" in text
  assert "energy_landscape.png: not next to the results" in text


def test_sag_vicreg(monkeypatch, tmp_path):
  path = helpers.fake_sag_results(str(tmp_path / "run"))
  nb = _run("sag_vicreg", monkeypatch, tmp_path, {"SSLJAX_SAG": path})
  # bar charts and centroids of both groups, per-seed pairs of both groups
  assert _images(nb) == 6
  text = _text(nb)
  assert "| unseen | SAG-VICReg | ✓ | · | · |" in text
  assert "missing: full/simclr/seed0" in text
  assert "| SAG-VICReg | 0.605 ± 0.007 |" in text  # the experiment's table
  assert "| SGS | 0.400 → 0.600 (+0.200) |" in text
  assert "| (1) | linear | Δ within ± spread | 0.405 | 0.405 | +0.000 |" in text
  assert ("**(1) better global semantics at similar local accuracy**: holds "
          "(2 seeds: 0, 1; 12 of 12 conditions met)") in text
  assert ("**(2) better on unseen clusters**: undetermined (fewer than 2 "
          "seeds: 1 with both methods in unseen)") in text
