"""BYOL's linear evaluation on ImageNet (Grill et al. 2020, appendix C.1).

  ssljax-train --config=configs/eval/byol_linear_imagenet.py:gs://BUCKET/byol_r50 \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/byol_r50_linear
  ssljax-eval --workdir=gs://BUCKET/byol_r50_linear --evals=classify

Arg: the pretraining workdir (configs/byol_resnet50_imagenet.py) or an
ssljax-import of the released ResNet-50. Protocol: frozen ResNet-50 trunk
in eval mode, linear head, SGD with Nesterov momentum 0.9 at lr 0.2 ×
batch/256 (the paper picks it from {0.4, 0.3, 0.2, 0.1, 0.05} on a
validation split; ssljax fixes the middle value), batch 1024, no weight
decay, 80 epochs, cosine; training crops RandomResizedCrop(224, scale
0.08–1, aspect 3/4–4/3) + flip; evaluation centre crop 224 of the image
resized to 256. Where ssljax differs: bicubic resizing in the paper,
ssljax's host-side crop resize (ssljax.data.pipeline); the head starts at
N(0, 0.01²) (the paper does not say; deepmind-research/byol starts it at
zero). Runtime: 80 epochs of a frozen ResNet-50 forward (not measured
with ssljax). Expected result: 74.3% top-1 for the 1000-epoch BYOL.
"""

from ssljax.experiments import load_config


def get_config(arg=None):
  c = load_config("eval/vicreg_linear_imagenet", arg)
  c.batch_size = 1024
  c.num_epochs = 80
  c.optimizer.update(name="sgd", base_lr=0.2, momentum=0.9, nesterov=True,
                     weight_decay=0.0, warmup_epochs=0.0)
  return c
