"""VICReg's linear evaluation on ImageNet (facebookresearch/vicreg evaluate.py).

  ssljax-train --config=configs/eval/vicreg_linear_imagenet.py:gs://BUCKET/vicreg_r50 \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/vicreg_r50_linear
  ssljax-eval --workdir=gs://BUCKET/vicreg_r50_linear --evals=classify

Arg: the pretraining workdir (or an ssljax-import of the released
ResNet-50). Protocol: frozen ResNet-50 trunk in eval mode, linear head ~
N(0, 0.01²) with zero bias, SGD momentum 0.9, lr 0.02 (the paper; the
script's default `--lr-head` is 0.3), wd 1e-6, batch 256, 100 epochs,
cosine without warm-up; training crops RandomResizedCrop(224, scale
0.08–1) + flip, evaluation: resize so the crop is 87.5% (256 → 224), centre
crop. Where ssljax differs: the official crops use bilinear resizing of
PIL images, ssljax resizes the crop on the host (ssljax.data.pipeline).
Runtime: 100 epochs of a frozen ResNet-50 forward (not measured with
ssljax). Expected result: 73.2% top-1 for the official 1000-epoch VICReg.
"""

from ssljax import configs


def get_config(arg=None):
  c = configs.base_config("downstream")
  c.model = dict(name="resnet50", dtype="bfloat16")
  c.data.dataset = "imagenet2012"
  c.data.eval_split = "validation"
  c.data.image_size = 224
  c.data.num_global = 1
  c.data.global_scale = (0.08, 1.0)
  c.data.crop_fraction = 0.875
  c.data.worker_count = 16
  c.augment = "none"
  c.downstream.update(init_from=arg or "", mode="linear", num_classes=1000,
                      head_init_std=0.01)
  c.batch_size = 256
  c.eval_batch_size = 1024
  c.num_epochs = 100
  c.optimizer.update(name="sgd", base_lr=0.02, momentum=0.9,
                     weight_decay=1e-6, warmup_epochs=0.0)
  c.eval.cli = "classify"
  c.summary_eval = False
  c.log_every = 100
  c.checkpoint.every = 5000
  return c
