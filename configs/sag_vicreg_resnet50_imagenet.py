"""SAG-VICReg, ResNet-50, ImageNet-1k: the VICReg recipe + random-walk pairs.

  ssljax-train --config=configs/sag_vicreg_resnet50_imagenet.py \\
      --config.data.data_dir=gs://BUCKET/tfds \\
      --workdir=gs://BUCKET/sag_vicreg_r50 --multiprocess

Everything of configs/vicreg_resnet50_imagenet.py (projector 8192-8192-8192,
batch 2048, LARS base lr 0.2, wd 1e-6, 1000 epochs, 10 warm-up epochs,
λ/μ/ν = 25/25/1, BYOL augmentations) plus pairing (`ssljax.methods.
sag_vicreg`, whose docstring explains every choice): after 100 epochs
(warmup_fraction 0.1) the walk pairs' share of the invariance term ramps
over 100 more epochs to α = 0.5; partners from a 3-step walk on the 10-NN
Gaussian graph of the 4096 encoder features (2048-d) of the global batch.
The paper's pairing settings are not published: these are ssljax's.
Graph cost at this size: benchmarks/random_walk.py (n = 4096, d = 2048).
Runtime: as the VICReg recipe plus the graph (not measured with ssljax).
Expected result: not measured with ssljax; the paper reports better
global-semantics metrics than VICReg at a similar linear accuracy.
"""

from ssljax import configs


def get_config(arg=None):
  del arg
  c = configs.base_config("sag_vicreg")
  # VICReg's official network and optimizer (configs/
  # vicreg_resnet50_imagenet.py; tests/test_configs.py keeps them equal).
  c.model = dict(name="resnet50", dtype="bfloat16", zero_init_residual=True,
                 torch_init=True, unbiased_running_var=True)
  c.projector = "8192-8192-8192"
  c.data.dataset = "imagenet2012"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.global_scale = (0.08, 1.0)
  c.data.interpolation = "bicubic"
  c.data.worker_count = 16
  c.augment = "vicreg"
  c.batch_size = 2048
  c.eval_batch_size = 2048
  c.num_epochs = 1000
  c.optimizer.base_lr = 0.2
  c.optimizer.weight_decay = 1e-6
  c.optimizer.warmup_epochs = 10.0
  c.optimizer.end_factor = 0.001
  c.optimizer.lars_lr_after_momentum = True
  c.pairing.update(weight=0.5, warmup_fraction=0.1, ramp_fraction=0.1,
                   graph_source="online", graph_features="encoder", steps=3,
                   num_neighbors=10, affinity="gaussian", scale_k=5)
  c.log_every = 100
  c.eval_every = 25_000
  c.checkpoint.every = 5000
  return c
