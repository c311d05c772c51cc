"""NNCLR, ResNet-50, ImageNet-1k: the paper's recipe (Dwibedi et al. 2021).

  ssljax-train --config=configs/nnclr_resnet50_imagenet.py \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/nnclr_r50 \\
      --multiprocess

No official code was released. The hyperparameters are the paper's:
support set 98,304, temperature 0.1, projector 2048-2048-256 and predictor
4096-256, BYOL's augmentation probabilities on 224 px crops with scale
(0.08, 1), LARS (momentum 0.9, trust 0.001, wd 1e-6, biases and norms
excluded), lr = 0.3 × batch/256, batch 4096, 1000 epochs, 10 warm-up
epochs then cosine to 0, bfloat16 compute. What the paper leaves open
follows vturrisi/solo-learn's NNCLR, the implementation
tests/test_recipe_nnclr.py checks step for step: torchvision's ResNet and
PyTorch's init, SyncBatchNorm (unbiased running variance), the
projector's last BN with a scale and an offset, torchvision's colour ops
and PIL's blur (the "nnclr" recipe: solo-learn's asymmetric.yaml), its
LARS (trust η‖p‖ / (‖g‖ + wd‖p‖), capped at the rate, biases and norms
neither adapted nor decayed: `optimizer.name = "larc"` with `larc_clip`
and `larc_exclude_bias_norm`) and its warm-up from 3e-5, linear to the
peak at the warm-up's last step. solo-learn's own ImageNet-100 recipe
(ResNet-18, batch 256, lr 0.4, trust 0.02, wd 1e-5, τ 0.2, support set
65,536, 400 epochs) is these fields with its values.
Runtime: 1000 ImageNet epochs at batch 4096 (not measured with ssljax).
Expected result: 75.4% linear top-1 (the paper's, ResNet-50).
"""

from ssljax import configs


def get_config(arg=None):
  del arg
  c = configs.base_config("nnclr")
  c.model = dict(name="resnet50", dtype="bfloat16", torch_init=True,
                 unbiased_running_var=True)
  c.projector = "2048-2048-256"
  c.predictor = "4096-256"
  c.head.last_bn_affine = True
  c.loss = dict(temperature=0.1)
  c.support_set.size = 98_304
  c.data.dataset = "imagenet2012"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.global_scale = (0.08, 1.0)
  c.data.interpolation = "bicubic"  # solo-learn's RandomResizedCrop
  c.data.worker_count = 16
  c.augment = "nnclr"
  c.batch_size = 4096
  c.eval_batch_size = 2048
  c.num_epochs = 1000
  c.optimizer.base_lr = 0.3
  c.optimizer.weight_decay = 1e-6
  c.optimizer.warmup_epochs = 10.0
  c.optimizer.name = "larc"
  c.optimizer.larc_clip = True
  c.optimizer.larc_exclude_bias_norm = True
  c.optimizer.warmup_linspace = True
  c.optimizer.warmup_start_factor = 3e-5 / (0.3 * 4096 / 256)
  c.log_every = 100
  c.eval_every = 25_000
  c.checkpoint.every = 5000
  return c
