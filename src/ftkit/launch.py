"""`--num-processes N` and friends: re-run this same ftkit command under Accelerate's launcher.

ftkit starts `python -m accelerate.commands.launch ... --module ftkit.cli <the same command>` with
the launch flags removed, waits for it, forwards SIGINT/SIGTERM (each rank then checkpoints
and exits) and returns its exit code. On a machine without CUDA it sets ACCELERATE_USE_CPU=1
and uses the multi-GPU launcher, which then starts N real ranks over gloo: the documented
`--cpu --num_processes N` silently runs a single process (see the stack notes).
A user may also start ftkit under `accelerate launch` or `torchrun` directly; the engine's
Accelerator picks up the ranks from the environment either way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Optional

import yaml

from ftkit.errors import UserError

#: CLI flag -> number of values it takes; these are removed from the command passed to the ranks.
LAUNCH_FLAGS = {"--num-processes": 1, "--num-machines": 1, "--machine-rank": 1, "--main-process-ip": 1,
                "--main-process-port": 1, "--accelerate-config": 1}


@dataclass
class Launch:
    num_processes: Optional[int] = None
    num_machines: int = 1
    machine_rank: int = 0
    main_process_ip: Optional[str] = None
    main_process_port: Optional[int] = None
    accelerate_config: Optional[str] = None

    @property
    def wanted(self) -> bool:
        """Relaunch unless we already are a launched rank or nothing asks for more than one process."""
        if "LOCAL_RANK" in os.environ or "ACCELERATE_LAUNCHED" in os.environ:
            return False
        return bool(self.accelerate_config) or (self.num_processes or 1) > 1 or self.num_machines > 1

    def check(self, cuda: bool = True) -> None:
        if self.num_machines > 1 and self.main_process_ip is None:
            raise UserError("--main-process-ip: required with --num-machines > 1 (the address of machine rank 0)")
        if not 0 <= self.machine_rank < self.num_machines:
            raise UserError(f"--machine-rank: expected 0..{self.num_machines - 1}, got {self.machine_rank}")
        if self.num_processes is not None and self.num_processes < self.num_machines:
            raise UserError("--num-processes: the total over all machines; it must be at least --num-machines")
        if self.accelerate_config and not os.path.isfile(self.accelerate_config):
            raise UserError(f"--accelerate-config: file not found: {self.accelerate_config}")
        if self.accelerate_config and not cuda:
            _check_shards_on_cpu(self.accelerate_config)


#: what a rank says when another one stopped first (cli.main): not the cause, never the run's last line
PEER_STOPPED = "another rank stopped first"


def rank_prefix() -> str:
    """'rank R: ' in a run of several processes (the rank that raised is the one to look at), else ''."""
    world, rank = os.environ.get("WORLD_SIZE"), os.environ.get("RANK")
    return f"rank {rank}: " if world and world != "1" and rank is not None else ""


def peer_stopped(e: BaseException) -> bool:
    """The collective a rank was in failed because another rank's process ended (gloo, NCCL)."""
    text = str(e)
    return any(s in text for s in ("Connection closed by peer", "remote worker crashing", "Connection reset by peer",
                                   "NCCL communicator was aborted"))


#: Accelerate profiles that shard a model: on a machine without CUDA they cannot do what they say.
SHARDING = {"FSDP": "FSDP", "DEEPSPEED": "DeepSpeed", "MEGATRON_LM": "Megatron-LM"}


def _check_shards_on_cpu(path: str) -> None:
    """A sharding profile on a machine without CUDA is refused in one line rather than run as something else: the
    engine's Accelerator(cpu=True) turns an FSDP profile into plain DDP over gloo (distributed_type MULTI_CPU,
    nothing sharded; measured with accelerate 1.15, torch 2.13), and without cpu=True every rank trained alone
    (distributed_type NO) on the whole data. DeepSpeed and Megatron-LM need CUDA."""
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f) or {}
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as e:
        raise UserError(f"--accelerate-config: {path} is not a YAML file ({str(e).splitlines()[0][:120]})") from None
    kind = SHARDING.get(str(config.get("distributed_type", "")).upper()) if isinstance(config, dict) else None
    if kind:
        why = ("on CPU Accelerate runs it as plain DDP, nothing sharded" if kind == "FSDP" else f"{kind} needs CUDA")
        raise UserError(f"--accelerate-config: {path} asks for {kind}, which shards the model over GPUs, and this machine "
                        f"has no CUDA device ({why}); use --num-processes N without a config for data-parallel training "
                        f"on CPU")


def strip_launch_flags(argv: list[str]) -> list[str]:
    out, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in LAUNCH_FLAGS:
            skip = 0 if "=" in arg else LAUNCH_FLAGS[name]
            continue
        out.append(arg)
    return out


def launcher_command(launch: Launch, argv: list[str], cuda: bool) -> tuple[list[str], dict]:
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if launch.accelerate_config:
        cmd += ["--config_file", launch.accelerate_config]
        if launch.num_processes:
            cmd += ["--num_processes", str(launch.num_processes)]
    else:
        n = launch.num_processes or launch.num_machines
        if not cuda:
            env["ACCELERATE_USE_CPU"] = "1"
        cmd += ["--multi_gpu", "--num_processes", str(n), "--num_machines", str(launch.num_machines),
                "--mixed_precision", "no", "--dynamo_backend", "no"]
    if launch.num_machines > 1:
        cmd += ["--machine_rank", str(launch.machine_rank), "--main_process_ip", str(launch.main_process_ip)]
    if launch.main_process_port:
        cmd += ["--main_process_port", str(launch.main_process_port)]
    env["ACCELERATE_LAUNCHED"] = "1"
    # The ranks must import this same ftkit, also when it is run from a source tree.
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return cmd + ["--module", "ftkit.cli", *strip_launch_flags(argv)], env


def relaunch(launch: Launch, argv: list[str], log=print) -> int:
    import torch

    launch.check(cuda=torch.cuda.is_available())
    cmd, env = launcher_command(launch, argv, torch.cuda.is_available())
    log(f"launching {launch.num_processes or launch.num_machines} process(es) on {launch.num_machines} machine(s) "
        f"through accelerate (machine rank {launch.machine_rank})")
    # the ranks' stderr passes through a pipe, so that the run can end on the line that says why it failed: the first
    # rank's error, which the launcher's own report (ChildFailedError, the other ranks' "connection closed") buries
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True, bufsize=1)

    def forward(signum, _frame):
        # to the whole group: the launcher and every rank; each rank checkpoints, then exits
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    first_error = None
    try:
        with proc.stderr:
            for line in proc.stderr:
                sys.stderr.write(line)
                if first_error is None and line.startswith("error: rank ") and PEER_STOPPED not in line:
                    first_error = line.rstrip("\n")
        code = proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if code != 0 and first_error is not None:  # a rank's UserError (exit 2 there; the launcher reports 1)
        sys.stderr.write(first_error + "\n")
        return 2
    return code
