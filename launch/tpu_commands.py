"""The gcloud commands of launch/tpu.py, built by pure functions (tested).

Accelerator type -> workers (TPU VM hosts; ssljax runs one process on each):

  family               N in FAMILY-N counts      workers   e.g.
  v2, v3, v4, v5p      TensorCores (2 a chip;    N / 8     v4-8: 1, v4-32: 4,
                       4 chips a host)                     v5p-128: 16
  v5litepod (v5e),     chips; slices of up to    1         v5litepod-8: 1
  v6e                  8 chips are one VM
                       larger: 4 chips a host    N / 4     v5litepod-16: 4,
                                                           v6e-256: 64

Runtime (TPU software) versions for JAX, per the Cloud TPU docs: v6e
v2-alpha-tpuv6e, v5p v2-alpha-tpuv5, v5e v2-alpha-tpuv5-lite, v4 and older
tpu-ubuntu2204-base. gcloud itself refuses a slice shape a family does not
offer (e.g. some core counts of v4 / v5p); this module checks the form.

Worker files: ~/ssljax (the shipped source; runs start there, so --config
is a repository path), ~/ssljax-venv, ~/ssljax-logs/{train.log, train.exit,
train.pid}.
"""

import dataclasses
import os
import re
import shlex
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREEMPTED_EXIT_CODE = 75  # ssljax.preemption.EXIT_CODE (no jax import here)
SRC, VENV, LOGS = "ssljax", "ssljax-venv", "ssljax-logs"  # in ~ on workers
STATUS_TAG = "ssljax-status:"


def home(path):
  """A path under the worker's home, quoted so the remote shell expands it."""
  return f'"$HOME/{path}"'


@dataclasses.dataclass(frozen=True)
class Family:
  counts: str  # what N in "<family>-N" counts: "cores" or "chips"
  runtime_version: str  # the TPU software version for JAX, per Cloud docs
  sizes: tuple = ()  # chip-counted families: the slice sizes offered


FAMILIES = {
    "v2": Family("cores", "tpu-ubuntu2204-base"),
    "v3": Family("cores", "tpu-ubuntu2204-base"),
    "v4": Family("cores", "tpu-ubuntu2204-base"),
    "v5p": Family("cores", "v2-alpha-tpuv5"),
    "v5litepod": Family("chips", "v2-alpha-tpuv5-lite",
                        (1, 2, 4, 8, 16, 32, 64, 128, 256)),
    "v6e": Family("chips", "v2-alpha-tpuv6e", (1, 4, 8, 16, 32, 64, 128, 256)),
}
ALIASES = {"v5e": "v5litepod", "v5lite": "v5litepod", "v6": "v6e",
           "v5": "v5p"}


@dataclasses.dataclass(frozen=True)
class Accelerator:
  type: str
  family: str
  chips: int
  workers: int
  runtime_version: str


def parse_accelerator(accelerator_type):
  """'v4-32' -> Accelerator(chips=16, workers=4, ...); ValueError if bad."""
  valid = ("valid families: v2, v3, v4, v5p (N: TensorCores, a multiple of "
           "8) and v5litepod, v6e (N: chips, 1 to 256)")
  m = re.fullmatch(r"([a-z0-9]+)-(\d+)", accelerator_type or "")
  if not m:
    raise ValueError(f"accelerator type {accelerator_type!r} is not "
                     f"FAMILY-N (e.g. v4-32); {valid}")
  family, n = m.group(1), int(m.group(2))
  if family not in FAMILIES:
    hint = (f" ({family} is spelled {ALIASES[family]}, e.g. "
            f"{ALIASES[family]}-16)" if family in ALIASES else "")
    raise ValueError(f"unknown accelerator family {family!r} in "
                     f"{accelerator_type!r}{hint}; {valid}")
  spec = FAMILIES[family]
  if spec.counts == "cores":
    if n < 8 or n % 8:
      raise ValueError(f"{accelerator_type}: {family}-N counts TensorCores (2 "
                       "a chip, 4 chips a host), so N is a multiple of 8")
    chips, workers = n // 2, n // 8
  else:
    if n not in spec.sizes:
      raise ValueError(f"{accelerator_type}: {family} slices have "
                       f"{', '.join(map(str, spec.sizes))} chips")
    chips, workers = n, (1 if n <= 8 else n // 4)
  return Accelerator(accelerator_type, family, chips, workers,
                     spec.runtime_version)


@dataclasses.dataclass(frozen=True)
class Tpu:
  """What names one TPU VM (or queued resource) for gcloud."""
  name: str
  zone: str
  project: str = None
  queued: bool = False
  spot: bool = False
  internal_ip: bool = False  # ssh / scp to workers without external IPs

  def gcloud(self, *words):
    flags = [f"--zone={self.zone}"]
    if self.project:
      flags.append(f"--project={self.project}")
    if self.internal_ip and words[:2] in (("tpu-vm", "ssh"),
                                          ("tpu-vm", "scp")):
      flags.append("--internal-ip")
    return ["gcloud", "compute", "tpus", *words, *flags]


def check_name(name):
  # TPU node and queued-resource IDs: RFC 1035 labels.
  if not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name or ""):
    raise ValueError(f"--name={name!r}: lowercase letters, digits and "
                     "hyphens, starting with a letter, at most 63 characters")


def create_command(tpu, acc, runtime_version=None, extra_flags=()):
  """A TPU VM, or a queued resource holding one (its node has its name)."""
  version = runtime_version or acc.runtime_version
  spot = ["--spot"] if tpu.spot else []
  if tpu.queued:
    return tpu.gcloud("queued-resources", "create", tpu.name,
                      f"--node-id={tpu.name}", f"--accelerator-type={acc.type}",
                      f"--runtime-version={version}", *spot, *extra_flags)
  return tpu.gcloud("tpu-vm", "create", tpu.name,
                    f"--accelerator-type={acc.type}", f"--version={version}",
                    *spot, *extra_flags)


def state_commands(tpu):
  """Queries whose output is one state word (READY, PREEMPTED, ACTIVE...)."""
  node = tpu.gcloud("tpu-vm", "describe", tpu.name, "--format=value(state)")
  if not tpu.queued:
    return [node]
  return [tpu.gcloud("queued-resources", "describe", tpu.name,
                     "--format=value(state.state)"), node]


def delete_command(tpu):
  if tpu.queued:  # --force also deletes the TPU VM the request holds
    return tpu.gcloud("queued-resources", "delete", tpu.name, "--force",
                      "--quiet")
  return tpu.gcloud("tpu-vm", "delete", tpu.name, "--quiet")


def ssh_command(tpu, worker="all", command=None):
  cmd = tpu.gcloud("tpu-vm", "ssh", tpu.name, f"--worker={worker}")
  return cmd + [f"--command={command}"] if command else cmd


def setup_commands(tpu, ref="HEAD", extras="tpu,gcs", python="3.12",
                   tarball=None):
  """git archive here, copy to every worker, unpack, install into a venv."""
  tarball = tarball or os.path.join(tempfile.gettempdir(),
                                    f"ssljax-{tpu.name}.tar.gz")
  uv = home(".local/bin/uv")
  install = "; ".join([
      "set -e", f"rm -rf {home(SRC)} {home(VENV)}",
      f"tar -xzf {home('ssljax.tar.gz')} -C \"$HOME\"",
      f"rm {home('ssljax.tar.gz')}",
      # uv brings a Python >= 3.11 onto images that ship 3.10; the second
      # form is for pip >= 23 on images whose Python is externally managed.
      "python3 -m pip install --user --quiet uv || python3 -m pip install "
      "--user --quiet --break-system-packages uv",
      f"{uv} venv --quiet --python={python} {home(VENV)}",
      f"{uv} pip install --quiet --python {home(VENV + '/bin/python')} "
      f"{home(SRC + '[' + extras + ']')}",
      'echo "ssljax installed on $(hostname)"'])
  return [
      ["git", "-C", ROOT, "archive", "--format=tar.gz", "--prefix=ssljax/",
       "-o", tarball, ref],
      tpu.gcloud("tpu-vm", "scp", tarball, f"{tpu.name}:ssljax.tar.gz",
                 "--worker=all"),
      ssh_command(tpu, "all", install),
  ]


def train_args(config, workdir, extra=(), force_lock=False):
  """ssljax-train's arguments; the same on every worker."""
  if not (workdir or "").startswith("gs://"):
    raise ValueError(f"--workdir={workdir!r}: use gs://BUCKET/PATH; every "
                     "worker writes to it and a TPU VM's disk dies with it")
  if not os.path.isfile(os.path.join(ROOT, config.split(":")[0])):
    raise ValueError(f"--config={config!r}: not a file in {ROOT}; give the "
                     "path relative to the repository (setup ships it)")
  for a in extra:
    if a.split("=")[0] in ("--config", "--workdir"):
      raise ValueError(f"{a!r} after --: use run's own --config / --workdir")
  args = [f"--config={config}", f"--workdir={workdir}", "--multiprocess"]
  args += [a for a in extra if a != "--multiprocess"]
  return args + (["--force_lock"] if force_lock else [])


def launch_command(tpu, args):
  """Starts ssljax-train on every worker, detached; returns at once."""
  log, code = home(f"{LOGS}/train.log"), home(f"{LOGS}/train.exit")
  inner = (f"{home(VENV + '/bin/ssljax-train')} {shlex.join(args)}; "
           f"echo $? > {code}")
  # `cmd &` alone (not inside an && list) so $! is the wrapper's pid.
  remote = "; ".join([
      "set -e", f"mkdir -p {home(LOGS)}", f"cd {home(SRC)}", f"rm -f {code}",
      f'echo "=== $(date -u +%FT%TZ) launch" >> {log}',
      f"nohup bash -c {shlex.quote(inner)} >> {log} 2>&1 < /dev/null & "
      f"echo $! > {home(LOGS + '/train.pid')}"])
  return ssh_command(tpu, "all", remote)


def poll_command(tpu):
  """Each worker prints one line: running, exit=N, lost or missing."""
  code, pid = home(f"{LOGS}/train.exit"), home(f"{LOGS}/train.pid")
  script = (f"if [ -f {code} ]; then echo \"{STATUS_TAG} exit=$(cat {code})\"; "
            f"elif kill -0 \"$(cat {pid} 2>/dev/null)\" 2>/dev/null; then "
            f"echo '{STATUS_TAG} running'; elif [ -d {home(LOGS)} ]; then "
            f"echo '{STATUS_TAG} lost'; else echo '{STATUS_TAG} missing'; fi")
  return ssh_command(tpu, "all", script)


def tail_command(tpu, worker=0, lines=100):
  return ssh_command(tpu, worker,
                     f"tail -n {lines} -F {home(LOGS + '/train.log')}")


def parse_statuses(stdout):
  return [l.split(STATUS_TAG, 1)[1].strip() for l in stdout.splitlines()
          if STATUS_TAG in l]


# States after which only a new VM helps. A STOPPED VM (stopped by someone)
# is not among them: the loop waits for it to be started, not deleted.
GONE = {"PREEMPTED", "TERMINATED", "DELETED", "NOT_FOUND", "SUSPENDING",
        "SUSPENDED", "FAILED"}


def decide(state, statuses, workers):
  """The next step of run --until_done, from the TPU's state and each
  worker's status: wait, done, failed, recreate (a preempted or vanished
  VM), reinstall (a VM never set up: set up, then launch) or relaunch."""
  if state in GONE:
    return "recreate"
  if state != "READY" or len(statuses) < workers:
    return "wait"  # still provisioning / repairing, or a worker unreachable
  codes = [s[len("exit="):] for s in statuses if s.startswith("exit=")]
  if any(c not in ("0", str(PREEMPTED_EXIT_CODE)) for c in codes):
    return "failed"
  if "running" in statuses:
    return "wait"
  if codes == ["0"] * workers:
    return "done"
  if "missing" in statuses:  # no ~/ssljax-logs: e.g. setup failed earlier
    return "reinstall"
  return "relaunch"  # exit 75, or a process lost (e.g. the host restarted)
