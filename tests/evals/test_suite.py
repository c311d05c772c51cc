import numpy as np
import pytest

from ssljax import evals


def _features(rng, n, mu):
  fine = rng.integers(0, 8, n)
  return {"x": {"rep": mu[fine] + rng.normal(size=(n, 6)),
                "stage1": rng.normal(size=(n, 3)),
                "stem": rng.normal(size=(n, 3))},
          "y": {"label": fine, "coarse_label": fine // 4}}


def test_suite_names_layers_levels_and_random_control():
  rng = np.random.default_rng(0)
  mu = rng.normal(size=(8, 6)) * 4
  tr, te = _features(rng, 400, mu), _features(rng, 200, mu)
  out = dict(evals.run("ncc,cdnv,hierarchy,rankme,knn,layers,random", tr, te,
                       levels=("label", "coarse_label"), knn_k=(5,)))
  assert next(iter(out)).startswith("stem/")  # input to output order
  assert out["rep/label/true/ncc_test"] > 0.9
  assert out["rep/label/random/ncc_test"] < 0.3
  assert out["stem/label/true/ncc_test"] < 0.3  # noise layer: chance
  assert out["rep/label/true/cdnv_train"] < out["rep/label/random/cdnv_train"]
  assert set(out) >= {"rep/tree/true/spearman", "stage1/-/-/rankme",
                      "rep/coarse_label/random/knn_k5"}
  # the random control keeps the tree: coarse = fine // 4 still holds
  yr = evals.suite._random_labels(tr["y"], ("label", "coarse_label"), 1)  # pylint: disable=protected-access
  assert np.array_equal(yr["coarse_label"], yr["label"] // 4)
  assert not np.array_equal(yr["label"], tr["y"]["label"])
  table = evals.table(out)
  assert "rep/label/random" in table and "ncc_test" in table


def test_unknown_eval_lists_valid_names():
  with pytest.raises(ValueError, match="Unknown evaluation.*nccc.*Valid: "
                     "linear"):
    evals.parse("knn,nccc")
