"""BN groups in concatenated passes: ssljax.methods.joint's row order."""

import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.methods import joint


def test_group_major_puts_each_groups_examples_of_every_view_together():
  # 3 views of 4 examples, 2 groups: group g holds examples 2g, 2g + 1.
  views = [np.arange(4) + 10 * v for v in range(3)]
  x = jnp.concatenate(views)
  got = np.asarray(joint.group_major(x, 3, 2))
  np.testing.assert_array_equal(got, [0, 1, 10, 11, 20, 21,
                                      2, 3, 12, 13, 22, 23])
  np.testing.assert_array_equal(joint.view_major(got, 3, 2), x)
  np.testing.assert_array_equal(joint.group_major(x, 3, 1), x)


def test_a_batch_the_groups_do_not_divide_is_refused():
  with pytest.raises(ValueError, match="model.bn_groups = 3"):
    joint.group_major(jnp.zeros((2 * 4, 2)), 2, 3)
