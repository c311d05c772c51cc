"""VICReg's semi-supervised fine-tuning on 1% or 10% of ImageNet's labels
(facebookresearch/vicreg evaluate.py `--weights finetune --train-perc`).

  ssljax-train --config=configs/eval/vicreg_semisup_imagenet.py:gs://BUCKET/vicreg_r50,1 \\
      --config.data.data_dir=gs://BUCKET/tfds --workdir=gs://BUCKET/vicreg_r50_semi1
  ssljax-eval --workdir=gs://BUCKET/vicreg_r50_semi1 --evals=classify

Arg "WORKDIR,PERCENT" with PERCENT 1 or 10: the pretraining workdir (or an
ssljax-import) and the label subset. The subsets are TFDS's
`imagenet2012_subset/1pct` and `/10pct` (SimCLR's lists, the ones VICReg
uses); evaluation on the full validation split. No arg: 1%, from the
random init. Protocol: the trunk and a
linear head ~ N(0, 0.01²) fine-tuned together (BatchNorm in train mode),
SGD momentum 0.9, batch 256, wd 0, 20 epochs, cosine without warm-up, lr
head / trunk 0.08 / 0.03 at 1% and 0.1 / 0.01 at 10% (the paper's
values; `trunk_lr_scale` is their ratio); crops as the linear evaluation.
Runtime: 20 epochs of ResNet-50 training on 12.8k (1%) or 128k (10%)
images (not measured with ssljax). Expected result: 54.8% (1%) and
69.5% (10%) top-1 for the official VICReg.
"""

from ssljax.experiments import load_config

# percent -> (head lr, trunk lr) of the paper.
LRS = {1: (0.08, 0.03), 10: (0.1, 0.01)}


def get_config(arg=None):
  workdir, _, pct = (arg or ",1").rpartition(",")
  if not pct.isdigit() or int(pct) not in LRS:
    raise ValueError(f"Bad arg {arg!r}: expected WORKDIR,PERCENT with "
                     "PERCENT 1 or 10.")
  head_lr, trunk_lr = LRS[int(pct)]
  c = load_config("eval/vicreg_linear_imagenet", workdir)
  c.data.dataset = f"imagenet2012_subset/{pct}pct"
  c.num_epochs = 20
  c.downstream.update(mode="finetune",
                      trunk_lr_scale=round(trunk_lr / head_lr, 6))
  c.optimizer.update(name="sgd", base_lr=head_lr, momentum=0.9,
                     weight_decay=0.0, warmup_epochs=0.0)
  c.checkpoint.every = 1000
  return c
