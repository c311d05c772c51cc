"""SAG-VICReg, ResNet-18 (CIFAR stem), CIFAR-100 with its 20 superclasses.

  ssljax-train --config=configs/sag_vicreg_resnet18_cifar100.py \\
      --config.data.data_dir=/data/tfds --workdir=/tmp/sag_vicreg_c100

Prepare CIFAR-100 once where there is internet:
  tfds build cifar100 --data_dir=/data/tfds --file_format=array_record
Recipe: the CIFAR adaptation of VICReg of configs/vicreg_resnet18_cifar10.py
(projector 2048-2048-2048, batch 256, LARS base lr 0.3, wd 1e-4, 1000
epochs, 10 warm-up epochs, 32 px crops (0.08, 1), `cifar` augmentations)
plus pairing (`ssljax.methods.sag_vicreg`): α = 0.5 after 10% of training
and a 10% ramp, 3-step walk on the 10-NN Gaussian graph of the 512 encoder
features of both views. Evaluation adds the superclass level
("coarse_label") to the label-based metrics and the hierarchy, clustering
(k-means, average-linkage cut: RI / ARI per level) and label-free spectral
metrics. For generalization to unseen classes, hold fine classes out of
pretraining, e.g. one whole superclass (its five fine classes):
  --config.data.holdout_key=coarse_label --config.data.holdout_classes=0,
and `ssljax-eval --evals=knn,ncc,hierarchy,unseen` scores them alone.
Runtime and expected result: not yet measured with ssljax (needs an
accelerator; benchmarks/train_step.py gives the step time on yours).
"""

from ssljax import configs


def get_config(arg=None):
  del arg
  c = configs.base_config("sag_vicreg")
  c.model = dict(name="resnet18", stem="cifar", dtype="float32")
  c.projector = "2048-2048-2048"
  c.data.dataset = "cifar100"
  c.data.eval_split = "test"
  c.data.image_size = 32
  c.data.global_scale = (0.08, 1.0)
  c.data.crop_fraction = 1.0
  c.data.mean = (0.5071, 0.4865, 0.4409)
  c.data.std = (0.2673, 0.2564, 0.2762)
  c.augment = "cifar"
  c.batch_size = 256
  c.eval_batch_size = 1000
  c.num_epochs = 1000
  c.optimizer.base_lr = 0.3
  c.optimizer.weight_decay = 1e-4
  c.optimizer.warmup_epochs = 10.0
  c.pairing.update(weight=0.5, warmup_fraction=0.1, ramp_fraction=0.1,
                   steps=3, num_neighbors=10, affinity="gaussian", scale_k=5)
  c.eval.coarse_label_keys = ("coarse_label",)
  c.eval.cli = "linear,knn,ncc,hierarchy,kmeans,agglomerative,spectral"
  c.log_every = 50
  c.eval_every = 20 * 195
  c.checkpoint.every = 2000
  return c
