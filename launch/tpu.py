#!/usr/bin/env python3
"""Cloud TPU VMs for ssljax: create, setup, run, status, tail, ssh, delete.

  T="--name=ssl --zone=us-central2-b --accelerator=v4-32"
  python launch/tpu.py create $T [--spot | --queued [--spot]]
  python launch/tpu.py setup  $T                  # ship HEAD, install on all
  python launch/tpu.py run    $T --config=configs/vicreg_resnet50_imagenet.py \\
      --workdir=gs://BUCKET/vicreg [--until_done [--spot] [--queued]] \\
      -- --config.data.data_dir=gs://BUCKET/tfds  # after --: ssljax-train's
  python launch/tpu.py status|tail|ssh --name=ssl --zone=us-central2-b
  python launch/tpu.py delete --name=ssl --zone=us-central2-b [--queued]

--dry_run (any subcommand) prints every command, one per line, and runs
nothing; without it gcloud must be installed and authenticated.

Workers per accelerator type (v4-8: 1, v4-32: 4, v5litepod-16: 4, ...),
runtime versions and the files on the workers: launch/tpu_commands.py,
which builds every command (pure functions; tests/test_launchers.py).

setup: `git archive` of the repository at --ref (committed code only) is
copied to every worker (~/ssljax) and installed with its `tpu,gcs` extras
into ~/ssljax-venv (Python 3.12 through uv: TPU VM images ship 3.10 and
ssljax needs 3.11+). run: the same `ssljax-train --multiprocess` on every
worker (jax.distributed autodetects the slice), detached with nohup; each
worker logs to its own ~/ssljax-logs/train.log and writes the exit code to
~/ssljax-logs/train.exit. The workdir must be gs:// (a VM disk is not
shared between workers and is lost with the VM).

run --until_done stays in the foreground and polls every --poll_seconds:
a VM that is PREEMPTED / TERMINATED (a queued resource SUSPENDED / FAILED)
or gone is deleted, recreated, set up and relaunched with --force_lock
(lock.json's owner died with the old VM, and a new VM has a new hostname, so
the lock would otherwise look live for 30 min); workers that all exited 75
(ssljax's "checkpointed, run again") are relaunched on the same VM. Each
launch resumes from the newest checkpoint in the gs:// workdir. It stops on
exit 0 everywhere, or on any other exit code (reported, not retried).
"""

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# pylint: disable=g-import-not-at-top,wrong-import-position
import tpu_commands as tc  # noqa: E402


class Runner:
  """Prints commands (dry run) or runs them, echoing each like `set -x`."""

  def __init__(self, dry_run, out=None):
    self.dry_run, self.out = dry_run, out or sys.stdout
    if not dry_run and not shutil.which("gcloud"):
      raise SystemExit("tpu.py: gcloud not found: install the Google Cloud "
                       "CLI (and `gcloud auth login`), or pass --dry_run")

  def note(self, text):
    print(f"# {text}", file=self.out if self.dry_run else sys.stderr)

  def __call__(self, argv, check=True, capture=False):
    """Returns (exit code, stdout, stderr); the last two only if capture."""
    if self.dry_run:
      print(shlex.join(argv), file=self.out)
      return 0, "", ""
    print(f"+ {shlex.join(argv)}", file=sys.stderr, flush=True)
    p = subprocess.run(argv, text=True, check=False,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None)
    if check and p.returncode:
      raise SystemExit(f"tpu.py: failed ({p.returncode}): {shlex.join(argv)}"
                       + (f"\n{p.stderr.strip()}" if capture else ""))
    return p.returncode, p.stdout or "", p.stderr or ""

  def sleep(self, seconds):
    if not self.dry_run:
      time.sleep(seconds)


def vm_state(run, tpu):
  """READY, a GONE state, or a transitional one (live mode only)."""
  for cmd in tc.state_commands(tpu):
    rc, out, err = run(cmd, check=False, capture=True)
    if rc:
      if "NOT_FOUND" in err or "not found" in err.lower():
        return "NOT_FOUND"
      raise SystemExit(f"tpu.py: cannot read the state of {tpu.name}: {err}")
    state = out.strip() or "UNKNOWN"
    if state != "ACTIVE":  # a queued resource's ACTIVE: ask its node
      return state
  return state


def create(run, tpu, acc, opts):
  run.note(f"{acc.type}: {acc.workers} worker(s), {acc.chips} chips, "
           f"{'queued, ' if tpu.queued else ''}"
           f"{'spot' if tpu.spot else 'on-demand'}, runtime "
           f"{opts.runtime_version or acc.runtime_version}")
  run(tc.create_command(tpu, acc, opts.runtime_version, opts.create_flag))
  if tpu.queued:  # the request waits in a queue; the VM exists once ACTIVE
    run.note("then, every --poll_seconds, until the state is ACTIVE:")
    if run.dry_run:
      run(tc.state_commands(tpu)[0])
      return
    last = None
    while (state := vm_state(run, tpu)) != "READY":
      if state in ("FAILED", "SUSPENDED", "NOT_FOUND"):
        raise SystemExit(f"tpu.py: queued resource {tpu.name} is {state}")
      if state != last:
        run.note(f"{time.strftime('%H:%M:%S')} {tpu.name}: {state}")
      last = state
      run.sleep(opts.poll_seconds)


def setup(run, tpu, acc, opts):
  run.note(f"install ssljax at {opts.ref} on all {acc.workers} worker(s)")
  if not run.dry_run:
    _, dirty, _ = run(["git", "-C", tc.ROOT, "status", "--porcelain"],
                      capture=True)
    if dirty.strip() and opts.ref == "HEAD":
      run.note("warning: uncommitted changes are not shipped (HEAD only)")
  for cmd in tc.setup_commands(tpu, opts.ref, opts.extras, opts.python):
    run(cmd)


def launch(run, tpu, acc, opts, force_lock=False):
  args = tc.train_args(opts.config, opts.workdir, opts.train_args,
                       force_lock)
  run.note(f"ssljax-train on all {acc.workers} worker(s), detached; logs in "
           "~/ssljax-logs/train.log on each")
  run(tc.launch_command(tpu, args))


def poll(run, tpu):
  _, out, _ = run(tc.poll_command(tpu), check=False, capture=True)
  return tc.parse_statuses(out)


def recreate(run, tpu, acc, opts):
  run(tc.delete_command(tpu), check=False)
  create(run, tpu, acc, opts)
  reinstall(run, tpu, acc, opts)


def reinstall(run, tpu, acc, opts):
  # A new VM: --force_lock, since lock.json's owner died with the old VM and
  # the new one has another hostname (the lock would look live for 30 min).
  setup(run, tpu, acc, opts)
  launch(run, tpu, acc, opts, force_lock=True)


def until_done(run, tpu, acc, opts):
  """Relaunches after preemption until ssljax-train exits 0 everywhere."""
  if run.dry_run:  # one iteration of the loop below, every branch shown
    run.note("run --until_done: launch (create and set up first if the TPU "
             "does not exist; only watch if it is already running), then "
             f"every {opts.poll_seconds:g} s read the state and each "
             "worker's status:")
    launch(run, tpu, acc, opts)
    for cmd in tc.state_commands(tpu) + [tc.poll_command(tpu)]:
      run(cmd)
    run.note(f"if the state is one of {', '.join(sorted(tc.GONE))}: "
             "delete, recreate, set up and relaunch (it resumes from the "
             "workdir's newest checkpoint):")
    recreate(run, tpu, acc, opts)
    run.note(f"if every worker exited {tc.PREEMPTED_EXIT_CODE} (checkpointed "
             "and stopped) or lost its process: relaunch on the same VM:")
    launch(run, tpu, acc, opts)
    run.note("stop when every worker exited 0, or on any other exit code")
    return 0
  state = vm_state(run, tpu)
  if state == "NOT_FOUND":
    create(run, tpu, acc, opts)
    setup(run, tpu, acc, opts)
    launch(run, tpu, acc, opts)
  elif state == "READY" and "running" in poll(run, tpu):
    run.note(f"ssljax-train is already running on {tpu.name}: watching it")
  elif state == "READY":
    launch(run, tpu, acc, opts)
  restarts, steps = 0, {"recreate": recreate, "reinstall": reinstall,
                        "relaunch": launch}
  while True:
    run.sleep(opts.poll_seconds)
    state = vm_state(run, tpu)
    statuses = poll(run, tpu) if state == "READY" else []
    action = tc.decide(state, statuses, acc.workers)
    run.note(f"{time.strftime('%H:%M:%S')} {state} {statuses}: {action}")
    if action == "done":
      return 0
    if action == "failed":
      run.note("stopped: `python launch/tpu.py tail --worker=N ...` shows "
               "the log of a worker whose exit code is not 0 or "
               f"{tc.PREEMPTED_EXIT_CODE}")
      return 1
    if action in steps:
      if restarts >= opts.max_restarts:
        run.note(f"gave up after --max_restarts={opts.max_restarts}")
        return 1
      restarts += 1
      try:
        steps[action](run, tpu, acc, opts)
      except SystemExit as e:  # e.g. no spot capacity now: try again later
        run.note(f"{e}; trying again in {opts.poll_seconds:g} s")


def build_parser():
  common = argparse.ArgumentParser(add_help=False)
  common.add_argument("--name", required=True, help="TPU VM name")
  common.add_argument("--zone", required=True, help="e.g. us-central2-b")
  common.add_argument("--project", help="default: gcloud's configured one")
  common.add_argument("--dry_run", action="store_true",
                      help="print the commands; run nothing")
  common.add_argument("--queued", action="store_true",
                      help="a queued resource (create/delete/poll through it)")
  common.add_argument("--internal_ip", action="store_true",
                      help="ssh / scp to the workers' internal IPs")
  acc = argparse.ArgumentParser(add_help=False)
  acc.add_argument("--accelerator", required=True, help="e.g. v4-32")
  acc.add_argument("--spot", action="store_true",
                   help="Spot capacity (a Spot VM, or a spot queued request)")
  acc.add_argument("--runtime_version", help="default: per family")
  acc.add_argument("--create_flag", action="append", default=[],
                   help="extra gcloud create flag, e.g. --create_flag="
                   "--network=NET (repeatable)")
  acc.add_argument("--poll_seconds", type=float, default=60)
  install = argparse.ArgumentParser(add_help=False)
  install.add_argument("--ref", default="HEAD", help="git ref to ship")
  install.add_argument("--extras", default="tpu,gcs", help="ssljax extras")
  install.add_argument("--python", default="3.12", help="on the workers")
  p = argparse.ArgumentParser(
      prog="launch/tpu.py", description=__doc__.split("\n")[0],
      epilog="Arguments after -- go to ssljax-train (run).")
  sub = p.add_subparsers(dest="command", required=True)
  sub.add_parser("create", parents=[common, acc])
  sub.add_parser("setup", parents=[common, acc, install])
  r = sub.add_parser("run", parents=[common, acc, install])
  r.add_argument("--config", required=True, help="path in the repository")
  r.add_argument("--workdir", required=True, help="gs://BUCKET/PATH")
  r.add_argument("--until_done", action="store_true",
                 help="stay, recreate / relaunch after preemption")
  r.add_argument("--max_restarts", type=int, default=100)
  sub.add_parser("status", parents=[common])
  for name in ("tail", "ssh"):
    sub.add_parser(name, parents=[common]).add_argument(
        "--worker", default="0", help="index, or all")
  sub.choices["tail"].add_argument("--lines", type=int, default=100)
  sub.choices["ssh"].add_argument("--command", dest="remote_command")
  sub.add_parser("delete", parents=[common])
  return p


def main(argv=None, out=None):
  argv = list(sys.argv[1:] if argv is None else argv)
  extra = argv[argv.index("--") + 1:] if "--" in argv else []
  argv = argv[:argv.index("--")] if "--" in argv else argv
  parser = build_parser()
  opts = parser.parse_args(argv)
  opts.train_args = extra
  if extra and opts.command != "run":
    parser.error("arguments after -- are for `run` only")
  if "--dry_run" in extra:  # ssljax-train has none: a misplaced, live run
    parser.error("--dry_run after --: put it before --")
  try:
    tc.check_name(opts.name)
    acc = (tc.parse_accelerator(opts.accelerator)
           if hasattr(opts, "accelerator") else None)
    if opts.command == "run":
      tc.train_args(opts.config, opts.workdir, extra)  # refuse bad input now
    if getattr(opts, "worker", "all") != "all" and not opts.worker.isdigit():
      raise ValueError(f"--worker={opts.worker!r}: an index or all")
  except ValueError as e:
    parser.error(str(e))
  tpu = tc.Tpu(opts.name, opts.zone, opts.project, opts.queued,
               getattr(opts, "spot", False), opts.internal_ip)
  run = Runner(opts.dry_run, out)
  if opts.command == "create":
    create(run, tpu, acc, opts)
  elif opts.command == "setup":
    setup(run, tpu, acc, opts)
  elif opts.command == "run" and opts.until_done:
    return until_done(run, tpu, acc, opts)
  elif opts.command == "run":
    launch(run, tpu, acc, opts)
    where = f"--name={tpu.name} --zone={tpu.zone}" + (
        f" --project={tpu.project}" if tpu.project else "")
    run.note(f"follow: python launch/tpu.py tail {where}; after a "
             "preemption the same run resumes (or use --until_done)")
  elif opts.command == "status":
    if run.dry_run:
      for cmd in tc.state_commands(tpu) + [tc.poll_command(tpu)]:
        run(cmd)
    else:
      state = vm_state(run, tpu)
      print(state, *(poll(run, tpu) if state == "READY" else []))
  elif opts.command == "tail":
    return run(tc.tail_command(tpu, opts.worker, opts.lines), check=False)[0]
  elif opts.command == "ssh":
    return run(tc.ssh_command(tpu, opts.worker, opts.remote_command),
               check=False)[0]
  elif opts.command == "delete":
    run(tc.delete_command(tpu))
  return 0


if __name__ == "__main__":
  sys.exit(main())
