#!/usr/bin/env python3
"""Writes a SLURM batch script that runs ssljax-train on GPU nodes.

  python launch/slurm.py --nodes=2 --gpus_per_node=8 \\
      --config=configs/vicreg_resnet50_imagenet.py --workdir=/shared/runs/v1 \\
      --partition=gpu --time=24:00:00 --venv=$PWD/.venv \\
      --out=vicreg.sbatch -- --config.data.data_dir=/shared/tfds
  sbatch --test-only vicreg.sbatch   # SLURM checks it, submits nothing
  sbatch vicreg.sbatch

Process layout (--per):
  gpu   (default) one process per GPU: --ntasks-per-node=GPUS. srun sets
        SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID, and
        jax.distributed.initialize (ssljax-train --multiprocess) turns them
        into process_id, num_processes and local_device_ids=[SLURM_LOCALID];
        the coordinator is the first node, on a port derived from the job id.
  node  one process per node, driving all its GPUs. The same autodetection
        would give each process only GPU SLURM_LOCALID=0, so the script
        exports JAX_LOCAL_DEVICE_IDS=0,...,GPUS-1, which jax reads first.
  Either way every task sees all the GPUs of its node (no --gpus-per-task).

Preemption and time limits: --signal=TERM@S sends SIGTERM to every task S
seconds before the time limit; ssljax checkpoints (all processes at the same
step) and exits 75, and the script then requeues the job (--requeue, up to
--max_requeues times), which resumes from the newest checkpoint in the
workdir. A requeued run passes --force_lock: the lock.json owner was this
job's previous run, now dead, possibly on another node. `scancel` also
SIGTERMs the batch shell, so a cancelled job is not requeued. The workdir
must be visible from every node: a shared file system or gs://.
"""

import argparse
import os
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREEMPTED_EXIT_CODE = 75  # ssljax.preemption.EXIT_CODE


def render(nodes, gpus_per_node, config, workdir, train_args=(), per="gpu",
           job_name="ssljax", time="24:00:00", partition=None, account=None,
           cpus_per_task=None, venv=None, setup_lines=(), repo=ROOT,
           signal_seconds=300, max_requeues=20, output="%x-%j.out",
           command_line=None):
  """The batch script's text; ValueError on inconsistent input."""
  if nodes < 1 or gpus_per_node < 1:
    raise ValueError(f"--nodes={nodes}, --gpus_per_node={gpus_per_node}: "
                     "both must be >= 1")
  if per not in ("gpu", "node"):
    raise ValueError(f"--per={per!r}: gpu or node")
  if not (workdir.startswith("gs://") or os.path.isabs(workdir)):
    raise ValueError(f"--workdir={workdir!r}: an absolute path on a file "
                     "system every node mounts, or gs://BUCKET/PATH")
  if repo == ROOT and not os.path.isfile(
      os.path.join(ROOT, config.split(":")[0])):
    raise ValueError(f"--config={config!r}: not a file in {ROOT}; give the "
                     "path relative to the repository")
  for a in train_args:
    if a.split("=")[0] in ("--config", "--workdir", "--force_lock"):
      raise ValueError(f"{a!r} after --: set by the script / its own flags")
  tasks = gpus_per_node if per == "gpu" else 1
  sbatch = [f"--job-name={job_name}", f"--nodes={nodes}",
            f"--ntasks-per-node={tasks}", f"--gpus-per-node={gpus_per_node}",
            f"--time={time}", f"--output={output}",
            "--open-mode=append",  # a requeued run appends to the same log
            f"--signal=TERM@{signal_seconds}",  # to the tasks, not the shell
            "--requeue"]
  sbatch += [f"--partition={partition}"] if partition else []
  sbatch += [f"--account={account}"] if account else []
  sbatch += [f"--cpus-per-task={cpus_per_task}"] if cpus_per_task else []
  args = [f"--config={config}", f"--workdir={workdir}", "--multiprocess"]
  args += [a for a in train_args if a != "--multiprocess"]
  lines = ["#!/bin/bash",
           "# Written by launch/slurm.py"
           + (f": {command_line}" if command_line else "."),
           f"# {nodes} node(s) x {gpus_per_node} GPU(s), one process per "
           f"{per}: {nodes * tasks} process(es) in all."]
  lines += [f"#SBATCH {s}" for s in sbatch]
  lines += ["", "set -uo pipefail  # not -e: the exit code is read below"]
  lines += [f"source {shlex.quote(os.path.join(venv, 'bin', 'activate'))}"
            ] if venv else []
  lines += list(setup_lines)
  lines += [f"cd {shlex.quote(repo)}"]
  if per == "node":
    ids = ",".join(map(str, range(gpus_per_node)))
    lines += ["# One process drives every GPU of its node (see launch/"
              "slurm.py).", f"export JAX_LOCAL_DEVICE_IDS={ids}"]
  lines += [
      "",
      "# A requeued run takes over the lock of this job's previous, dead run.",
      'FORCE_LOCK=""',
      'if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then FORCE_LOCK=--force_lock;'
      " fi",
      "# No --kill-on-bad-exit: every process exits 75 after a preemption,",
      "# and srun must not kill the others before they are done.",
      f"srun ssljax-train {shlex.join(args)} $FORCE_LOCK",
      "code=$?",
      f'if [ "$code" -eq {PREEMPTED_EXIT_CODE} ] && '
      f'[ "${{SLURM_RESTART_COUNT:-0}}" -lt {max_requeues} ]; then',
      '  echo "ssljax: checkpointed and stopped; requeueing job $SLURM_JOB_ID"',
      '  scontrol requeue "$SLURM_JOB_ID"',
      "fi",
      'exit "$code"', ""]
  return "\n".join(lines)


def main(argv=None):
  argv = list(sys.argv[1:] if argv is None else argv)
  extra = argv[argv.index("--") + 1:] if "--" in argv else []
  argv = argv[:argv.index("--")] if "--" in argv else argv
  p = argparse.ArgumentParser(
      prog="launch/slurm.py", description=__doc__.split("\n")[0],
      epilog="Arguments after -- go to ssljax-train.")
  p.add_argument("--nodes", type=int, required=True)
  p.add_argument("--gpus_per_node", type=int, required=True)
  p.add_argument("--per", choices=("gpu", "node"), default="gpu",
                 help="one process per GPU (default) or per node")
  p.add_argument("--config", required=True, help="path in the repository")
  p.add_argument("--workdir", required=True,
                 help="absolute shared path, or gs://BUCKET/PATH")
  p.add_argument("--job_name", default="ssljax")
  p.add_argument("--time", default="24:00:00", help="SLURM time limit")
  p.add_argument("--partition")
  p.add_argument("--account")
  p.add_argument("--cpus_per_task", type=int)
  p.add_argument("--venv", help="a virtualenv to activate on the nodes")
  p.add_argument("--setup_line", action="append", default=[],
                 help="a shell line run before srun, e.g. 'module load "
                 "cuda' (repeatable)")
  p.add_argument("--repo", default=ROOT,
                 help="the repository on the cluster (default: this one)")
  p.add_argument("--signal_seconds", type=int, default=300,
                 help="SIGTERM this long before the time limit")
  p.add_argument("--max_requeues", type=int, default=20)
  p.add_argument("--out", help="write here (default: stdout)")
  opts = p.parse_args(argv)
  try:
    text = render(
        opts.nodes, opts.gpus_per_node, opts.config, opts.workdir, extra,
        opts.per, opts.job_name, opts.time, opts.partition, opts.account,
        opts.cpus_per_task, opts.venv, opts.setup_line, opts.repo,
        opts.signal_seconds, opts.max_requeues,
        command_line=shlex.join(["python", "launch/slurm.py", *argv]
                                + (["--", *extra] if extra else [])))
  except ValueError as e:
    p.error(str(e))
  if opts.out:
    with open(opts.out, "w") as f:
      f.write(text)
    print(f"wrote {opts.out}; check it with `sbatch --test-only {opts.out}`, "
          f"submit it with `sbatch {opts.out}`", file=sys.stderr)
  else:
    sys.stdout.write(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
