"""Semi-supervised fine-tuning at CPU scale (VICReg's 1% / 10% protocol, shrunk).

  ssljax-train --config=configs/eval/semisup_cpu.py:/tmp/run,10 --workdir=/tmp/run_semi10
  ssljax-eval --workdir=/tmp/run_semi10 --evals=classify

Arg "WORKDIR,PERCENT": a pretraining workdir (as configs/eval/linear_cpu.py)
and the share of its training labels, PERCENT in 1..100; WORKDIR empty:
the random init (the control). The labelled subset is the first PERCENT%
of the train split (TFDS slicing `train[:10%]`; the shipped datasets are
stored in random class order, so the subset is close to class-balanced,
not exactly so as ImageNet's SimCLR lists). Protocol of
configs/eval/vicreg_semisup_imagenet.py: trunk and head fine-tuned, SGD
momentum 0.9, wd 0, cosine, lr head / trunk 0.08 / 0.03 at ≤ 1% and
0.1 / 0.01 above (lr × batch/256 as ssljax scales every lr); ssljax's
choice for the shipped data: batch 64 and a fixed 100 steps at every
percentage (1% of hierarchical_shapes is 100 images: VICReg's 20 epochs
at batch 256 would not make one step). Evaluation on the full test split.
Runtime: 1–3 min for compare_cpu's ResNet-18 on 2 CPU cores.
"""

from ssljax.experiments import load_config


def get_config(arg=None):
  workdir, _, pct = (arg or ",10").rpartition(",")
  if not pct.isdigit() or not 1 <= int(pct) <= 100:
    raise ValueError(f"Bad arg {arg!r}: expected WORKDIR,PERCENT with "
                     "PERCENT an integer in 1..100.")
  head_lr, trunk_lr = (0.08, 0.03) if int(pct) <= 1 else (0.1, 0.01)
  c = load_config("eval/linear_cpu", workdir or None)
  c.data.train_split = f"{c.data.train_split}[:{pct}%]"
  c.batch_size = 64
  c.num_steps = 100
  c.downstream.update(mode="finetune",
                      trunk_lr_scale=round(trunk_lr / head_lr, 6))
  c.optimizer.update(name="sgd", base_lr=head_lr, momentum=0.9,
                     weight_decay=0.0, warmup_epochs=0.0)
  c.eval.cli = "classify"
  c.checkpoint.every = 50
  return c
