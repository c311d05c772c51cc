"""Equal-budget comparison on a CPU: every SSL method of ssljax on one recipe.

  ssljax-train --config=configs/compare_cpu.py:mveb,mnist5k --workdir=/tmp/c
  python -m ssljax.experiments.compare_methods --workdir=/tmp/compare  # all

Arg "METHOD,DATASET"; methods: those of METHODS below; datasets:
mnist5k (25 epochs) and hierarchical_shapes (3.0.0; hierarchical_shapes_v2
for 2.0.0, the earlier results; 10 epochs). Everything but the
method's own head and loss is shared: width-8 ResNet-18 with the CIFAR stem,
two 32 px views with the same `cifar` augmentations (no multi-crop: MVEB's
local views would give it more views than the others), batch 256, AdamW
(lr 2e-3 × batch/256, wd 1e-4, half an epoch of warm-up, cosine), seed 0.
Method settings are their published defaults, untuned here: VICReg
25/25/1; MVEB λ = 0.01, η = 0.01, τ ≥ 0.1; SimCLR temperature 0.1;
Barlow Twins λ = 0.0051 (tuned for d = 8192, kept at d = 512); the EMA
methods (BYOL, MVEB) start their momentum at 0.99 instead of 0.996, the
usual value for runs of a few hundred steps. Projectors are 512 wide
(VICReg, SAG-VICReg, MVEB, Barlow Twins 512-512-512; SimCLR 512-512-128;
BYOL 512-128 + predictor 512-128; NNCLR 512-512-128 + predictor 512-128,
support set 768 = the paper's share of the train set, 98,304 of 1.28M;
SwAV 512-128 with 3000 prototypes frozen for one epoch, the official 313
steps at ImageNet scale; DINO's head 512-512-128 -> 4096 outputs, teacher
temperature 0.04, EMA base 0.99 as BYOL's). `sag_vicreg` is this VICReg plus ssljax's pairing
defaults (not published: ssljax.methods.sag_vicreg; α = 0.5 after 10% of
the run and a 10% ramp, 3-step walk on the 10-NN Gaussian graph of the
encoder features; its EMA, at 0.99 too, only with pairing.graph_source=
ema). The auto-encoder `ae` (no corruption; `--config.corruption.kind=
gaussian|mask` for the denoising / masking regimes) uses the same encoder,
batch, optimizer and crops, one view, and no colour augmentation (it
reconstructs its input: crop + flip only, as MAE); decoder 64 wide from a
4×4 start. `mae` shares the batch, optimizer, crops and view recipe of
`ae` but needs a ViT: ViT-tiny widths (192, 12 blocks, 3 heads), patch 4
at 32 px, decoder 128 wide with 2 blocks, mask ratio 0.75, norm-pix loss.
`ijepa` runs on that ViT (mean-pooled, one view, crop + flip) with a
predictor 96 wide and 4 blocks deep (the official ViT-H's is 384 of 1280
wide, 12 deep) and the official masks on the 8×8 patch grid (4 targets
of 15–20%, a context of 85–100% minus them).
Runtimes and results: docs/results/compare_methods.md. On
hierarchical_shapes 3.0.0 the optimizer chosen on the validation split is
LARS for VICReg, SAG-VICReg, SimCLR, BYOL and MVEB alike (AdamW stays the
default here: every page measured on this config used it); the LARS recipe
is one override list for the experiments (docs/results/optimizer_v3.md):
  --set=optimizer.name=lars,optimizer.base_lr=0.3,optimizer.momentum=0.9,\
optimizer.trust_coefficient=0.02,optimizer.weight_decay=1e-4
"""

from ssljax import configs

# name -> epochs; hierarchical_shapes_v2 is version 2.0.0 (earlier results).
DATASETS = {"mnist5k": 25, "hierarchical_shapes": 10,
            "hierarchical_shapes_v2": 10}
METHODS = ("mveb", "vicreg", "sag_vicreg", "byol", "simclr", "barlow_twins",
           "nnclr", "swav", "dino", "ae", "mae", "ijepa")


def get_config(arg=None):
  method, dataset = (arg or "mveb,mnist5k").split(",")
  if method not in METHODS or dataset not in DATASETS:
    raise ValueError(f"Bad arg {arg!r}: expected METHOD,DATASET with METHOD "
                     f"in {', '.join(METHODS)} and DATASET in "
                     f"{', '.join(DATASETS)}.")
  c = configs.base_config(method)
  c.model = dict(name="resnet18", stem="cifar", width=8, dtype="float32")
  if method in ("mveb", "vicreg", "sag_vicreg", "barlow_twins"):
    c.projector = "512-512-512"
  elif method == "byol":
    c.projector = "512-128"
    c.predictor = "512-128"
  elif method == "simclr":
    c.projector = "512-512-128"
  elif method == "nnclr":
    c.projector = "512-512-128"
    c.predictor = "512-128"
    c.support_set.size = 768  # the paper's 98,304 / 1.28M, of 10k images
  elif method == "swav":
    c.projector = "512-128"
  elif method == "dino":  # 512 wide like the others; 4096 prototypes
    c.dino.update(hidden_dim=512, bottleneck_dim=128, out_dim=4096)
  if "ema" in c:
    c.ema.base = 0.99
  c.data.dataset = dataset
  c.data.eval_split = "test"
  c.data.image_size = 32
  c.data.global_scale = (0.5, 1.0)
  c.data.crop_fraction = 1.0
  c.augment = "cifar"
  if method in ("ae", "mae", "ijepa"):
    c.data.num_global = 1
    c.augment = "none"
  if method == "ae":
    c.decoder = dict(width=64, start_size=4)
  if method == "mae":  # ViT-tiny widths at 32 px, patch 4 (64 patches)
    c.model = dict(name="vit_tiny", patch_size=4, image_size=32,
                   dtype="float32")
    c.mae.update(decoder_width=128, decoder_depth=2, decoder_heads=4)
  if method == "ijepa":  # MAE's ViT-tiny; predictor half as wide, 4 blocks
    c.model = dict(name="vit_tiny", patch_size=4, image_size=32, pool="gap",
                   width=192, depth=12, num_heads=3, dtype="float32")
    c.ijepa.update(pred_width=96, pred_depth=4)
  c.batch_size = 256
  c.eval_batch_size = 200
  c.num_epochs = DATASETS[dataset]
  if method == "swav":  # the official 313 steps are one ImageNet epoch
    c.swav.freeze_prototypes_steps = 10_000 // 256 if dataset != "mnist5k" \
        else 5000 // 256
  c.optimizer.name = "adamw"
  c.optimizer.base_lr = 2e-3
  c.optimizer.weight_decay = 1e-4
  c.optimizer.warmup_epochs = 0.5
  c.log_every = 10
  c.checkpoint.every = 100
  c.summary_eval = False  # compare_methods evaluates at the end
  c.eval.cli = "linear,knn,ncc"
  return c
