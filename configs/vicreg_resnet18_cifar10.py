"""VICReg, ResNet-18 (CIFAR stem), CIFAR-10.

  ssljax-train --config=configs/vicreg_resnet18_cifar10.py \\
      --config.data.data_dir=/data/tfds --workdir=/tmp/vicreg_c10

Prepare CIFAR-10 once where there is internet:
  tfds build cifar10 --data_dir=/data/tfds --file_format=array_record
Recipe: projector 2048-2048-2048, batch 256, LARS base lr 0.3, wd 1e-4,
1000 epochs, 10 warm-up epochs, crops (0.08, 1) at 32 px, colour jitter 0.8
(0.4, 0.4, 0.2, 0.1), grayscale 0.2, no blur (32 px), solarize 0.2 on the
second view: the usual CIFAR adaptation of the ImageNet recipe.
Runtime and expected result: not yet measured with ssljax (needs an
accelerator; benchmarks/train_step.py gives the step time on yours).
"""

from ssljax import configs


def get_config(arg=None):
  del arg
  c = configs.base_config("vicreg")
  c.model = dict(name="resnet18", stem="cifar", dtype="float32")
  c.projector = "2048-2048-2048"
  c.data.dataset = "cifar10"
  c.data.eval_split = "test"
  c.data.image_size = 32
  c.data.global_scale = (0.08, 1.0)
  c.data.crop_fraction = 1.0
  c.data.mean = (0.4914, 0.4822, 0.4465)
  c.data.std = (0.247, 0.243, 0.261)
  c.augment = "cifar"
  c.batch_size = 256
  c.eval_batch_size = 1000
  c.num_epochs = 1000
  c.optimizer.base_lr = 0.3
  c.optimizer.weight_decay = 1e-4
  c.optimizer.warmup_epochs = 10.0
  c.log_every = 50
  c.eval_every = 20 * 195
  c.checkpoint.every = 2000
  return c
