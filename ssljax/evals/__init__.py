"""Evaluations on frozen features (arrays n×d, integer labels), in jnp.

Probes (`probes.py`): knn_accuracy, linear_probe.
Class geometry (`geometry.py`): ncc_accuracy, cdnv, class_means, rankme,
  permute_labels (the random-label control).
Hierarchy (`hierarchy.py`): hierarchy_rank_correlation, spearman,
  kendall_tau_b, average_linkage, tree_distance.
Clustering (`clustering.py`): kmeans, nmi, ari, rand_index, kmeans_scores,
  agglomerative_scores (average-linkage cut, `hierarchy.average_linkage_cut`).
Label-free global structure (`spectral.py`): spectral_global_structure.
Running a named subset over layers and label levels (`suite.py`): EVALS, run.
"""

from ssljax.evals.clustering import (agglomerative_scores, ari, kmeans,
                                     kmeans_scores, nmi, rand_index)
from ssljax.evals.geometry import (cdnv, class_means, ncc_accuracy,
                                   permute_labels, rankme)
from ssljax.evals.hierarchy import (average_linkage, average_linkage_cut,
                                    hierarchy_rank_correlation,
                                    kendall_tau_b, spearman, tree_distance)
from ssljax.evals.probes import knn_accuracy, linear_probe
from ssljax.evals.spectral import spectral_global_structure
from ssljax.evals.suite import EVALS, layer_order, parse, run, table
