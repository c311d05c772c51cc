"""Throughput, FLOPs and model-FLOPs utilization (MFU) of a compiled step.

FLOPs come from XLA's cost analysis of the compiled, partitioned train step:
the count of ONE device's program (the global step's FLOPs divided by the
device count for data parallelism), as the compiler sees it — matmuls and
convolutions at 2 FLOPs per multiply-add, elementwise work included,
rematerialized work counted again. MFU = those FLOPs × steps/s over the
device's dense bf16 peak from PEAK_BF16_TFLOPS (vendor data sheets); a
device not in the table gets no MFU rather than a guess. Strictly, a count
that includes elementwise and rematerialized work makes this the hardware
FLOPs utilization; ssljax asks for no rematerialization and its steps'
elementwise work is a few percent of the matmuls' (benchmarks/scale.py
compares the count with an analytic one: 49.8 vs 49.2 GFLOP per example for
VICReg ResNet-50), so the two agree to that margin.
"""

import jax

# device_kind substring (lower case) -> dense bf16 peak TFLOP/s per chip
# (per GPU). Order matters: the first match wins ("v5 lite" before "v5").
PEAK_BF16_TFLOPS = (
    ("tpu v6 lite", 918.0),   # v6e (Trillium)
    ("tpu v6e", 918.0),
    ("tpu v5 lite", 197.0),   # v5e
    ("tpu v5e", 197.0),
    ("tpu v5p", 459.0),
    ("tpu v5", 459.0),        # v5p reports "TPU v5"
    ("tpu v4", 275.0),
    ("h200", 989.0),          # SXM, dense (no 2:4 sparsity)
    ("h100", 989.0),          # SXM; the PCIe card's 756 is not told apart
    ("a100", 312.0),
)


def peak_flops(device_kind):
  """Dense bf16 FLOP/s of one device, or None when the kind is unknown."""
  kind = device_kind.lower()
  for key, tflops in PEAK_BF16_TFLOPS:
    if key in kind:
      return tflops * 1e12
  return None


def compiled_flops(compiled):
  """FLOPs of one device's program of a compiled step (None if XLA does
  not report them)."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per program
    cost = cost[0] if cost else {}
  flops = (cost or {}).get("flops")
  return float(flops) if flops and flops > 0 else None


def compiled_memory(compiled):
  """{arguments, outputs, temporaries, aliased, total} bytes per device of
  a compiled step (XLA's memory analysis; total = arguments + outputs +
  temporaries − aliased, donated buffers counted once)."""
  m = compiled.memory_analysis()
  out = {"arguments": m.argument_size_in_bytes,
         "outputs": m.output_size_in_bytes,
         "temporaries": m.temp_size_in_bytes,
         "aliased": m.alias_size_in_bytes}
  out["total"] = (out["arguments"] + out["outputs"] + out["temporaries"]
                  - out["aliased"])
  return out


def rates(steps, seconds, global_batch, num_devices, flops_per_device_step,
          device_kind=None):
  """Per-device throughput metrics of `steps` steps that took `seconds`."""
  out = {"examples_per_sec_per_device":
             steps * global_batch / seconds / num_devices}
  if flops_per_device_step:
    achieved = flops_per_device_step * steps / seconds
    out["tflops_per_sec_per_device"] = achieved / 1e12
    peak = peak_flops(device_kind or jax.devices()[0].device_kind)
    if peak:
      out["mfu"] = achieved / peak
  return out
