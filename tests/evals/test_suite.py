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


def test_clustering_spectral_and_unseen_class_names():
  rng = np.random.default_rng(1)
  mu = rng.normal(size=(8, 6)) * 4
  tr, te = _features(rng, 400, mu), _features(rng, 200, mu)
  names = "knn,ncc,kmeans,agglomerative,spectral,hierarchy,unseen"
  out = dict(evals.run(names, tr, te, levels=("label", "coarse_label"),
                       knn_k=(5,), holdout=("label", (6, 7))))
  for lv in ("label", "coarse_label"):
    for m in ("kmeans_ri", "kmeans_ari", "agglo_ri", "agglo_ari",
              "agglo_nmi"):
      assert 0 <= out[f"rep/{lv}/true/{m}"] <= 1
  assert out["rep/label/true/agglo_ari"] > 0.5  # separated classes
  assert -1 <= out["rep/-/-/spectral_gs"] <= 1
  assert {"rep/-/unseen/spectral_gs", "rep/-/seen/spectral_gs",
          "rep/tree/seen/spearman"} <= set(out)
  # Unseen = only classes 6 and 7 (both in coarse class 1): the coarse level
  # and the tree have one class there and are skipped, not scored.
  assert "rep/coarse_label/unseen/knn_k5" not in out
  assert "rep/tree/unseen/spearman" not in out
  keep_tr = np.isin(tr["y"]["label"], (6, 7))
  keep_te = np.isin(te["y"]["label"], (6, 7))
  want = evals.ncc_accuracy(tr["x"]["rep"][keep_tr], tr["y"]["label"][keep_tr],
                            te["x"]["rep"][keep_te], te["y"]["label"][keep_te])
  assert out["rep/label/unseen/ncc_test"] == want
  # A whole coarse branch held out by its coarse label (1 = fine 4..7).
  by_coarse = dict(evals.run("ncc,unseen", tr, te,
                             levels=("label", "coarse_label"),
                             holdout=("coarse_label", (1,))))
  for kind, inside in (("unseen", True), ("seen", False)):
    m_tr = np.isin(tr["y"]["label"], (4, 5, 6, 7)) == inside
    m_te = np.isin(te["y"]["label"], (4, 5, 6, 7)) == inside
    assert by_coarse[f"rep/label/{kind}/ncc_test"] == evals.ncc_accuracy(
        tr["x"]["rep"][m_tr], tr["y"]["label"][m_tr],
        te["x"]["rep"][m_te], te["y"]["label"][m_te])
  with pytest.raises(ValueError, match="set data.holdout_classes"):
    list(evals.run("knn,unseen", tr, te))
