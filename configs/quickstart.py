"""Quickstart: VICReg on hierarchical_shapes, a small ResNet-18, on a CPU.

  ssljax-train --config=configs/quickstart.py --workdir=/tmp/ssljax_quickstart

Runtime: ~8 minutes on 2 CPU cores (dataset build included).
Expected result (summary.json, measured 2026-11-23): see README.md; the SSL
linear probe beats the same encoder at random init by well over 10 points.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config(arg=None):
  del arg
  c = common.base_config()
  c.method = "vicreg"
  c.model = dict(name="resnet18", stem="cifar", width=16, dtype="float32")
  c.projector = "512-512-512"
  c.data.dataset = "hierarchical_shapes"
  c.data.eval_split = "test"
  c.data.image_size = 32
  c.data.global_scale = (0.4, 1.0)
  c.data.crop_fraction = 1.0
  c.augment = "cifar"
  c.batch_size = 256
  c.eval_batch_size = 500
  c.num_epochs = 8
  c.optimizer.name = "lars"
  c.optimizer.base_lr = 0.3
  c.optimizer.weight_decay = 1e-4
  c.optimizer.warmup_epochs = 1
  c.log_every = 10
  c.checkpoint.every = 100
  return c
