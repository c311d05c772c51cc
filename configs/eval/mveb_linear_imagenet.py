"""MVEB's linear evaluation on ImageNet (wlj6816/MVEB, `linear.py`).

  ssljax-train --config=configs/eval/mveb_linear_imagenet.py:gs://BUCKET/mveb_r50 \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/mveb_r50_linear
  ssljax-eval --workdir=gs://BUCKET/mveb_r50_linear --evals=classify

Arg: the pretraining workdir (configs/mveb_resnet50_imagenet.py) or an
ssljax-import of a released ResNet-50. Protocol: frozen ResNet-50 trunk in
eval mode, linear head ~ N(0, 0.01²), SGD momentum 0.9 with a LARS-style
trust ratio (coefficient 1e-3) at lr 0.1 × batch/256, batch 4096, wd 0,
90 epochs, cosine; training crops RandomResizedCrop(224) + flip,
evaluation resize 256 → centre crop 224. ssljax's LARS (optax.lars) leaves
the head's bias out of the trust ratio, as ssljax does for every LARS
recipe; the official script's handling of the bias is not stated.
Runtime: 90 epochs of a frozen ResNet-50 forward at batch 4096 (not
measured with ssljax). Expected result: 76.9% top-1 (the paper's MVEB,
800 epochs).
"""

from ssljax.experiments import load_config


def get_config(arg=None):
  c = load_config("eval/vicreg_linear_imagenet", arg)
  c.batch_size = 4096
  c.eval_batch_size = 4096
  c.num_epochs = 90
  c.optimizer.update(name="lars", base_lr=0.1, momentum=0.9,
                     trust_coefficient=1e-3, weight_decay=0.0,
                     warmup_epochs=0.0)
  return c
