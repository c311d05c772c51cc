"""Data: sources (TFDS, generated, shipped), host pipeline, device augmentation.

Importing this package registers the `hierarchical_shapes`, `imagenet_like`,
`mnist5k` and `spiral2d` TFDS builders, so `tfds.data_source("hierarchical_shapes", ...)`
works anywhere.
"""

from ssljax.data import hierarchical_shapes
from ssljax.data import imagenet_like
from ssljax.data import mnist5k
from ssljax.data import spiral2d
from ssljax.data.sources import check_keys
from ssljax.data.sources import DatasetError
from ssljax.data.sources import InMemory
from ssljax.data.sources import load_labels
from ssljax.data.sources import load_source
from ssljax.data.sources import SHIPPED
