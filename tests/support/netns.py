"""Real hosts for tests: network namespaces with their own addresses, each running sshd.

A *lab* is a Linux bridge in the root namespace (the controller's side, ``.1`` of the subnet), one
namespace for the outside API (``.2``, where the sandbox server runs) and one namespace per host
(``.11`` onwards), each joined to the bridge by a veth pair. Every host namespace runs its own
``/usr/sbin/sshd`` (Debian ``openssh-server``, see ``tools/ensure-sshd``) with its own host key, in a
UTS namespace that carries the host's name and a mount namespace where ``/etc/ai-gateway`` is a
directory of that host's own. The lab generates one client key pair and a ``known_hosts`` file, so
Ansible reaches the hosts over real SSH with strict host key checking.

Cutting a host's route to the API adds an ``unreachable`` route for the API's address inside that
host's namespace (plain ``ip route``, no firewall needed): its connections to the API fail at once
with "No route to host" while SSH from the controller, which uses another address, keeps working.

Everything the lab writes lives under its directory; ``lab.json`` there records what was built, so
``down`` removes exactly that (and ends only the processes that run inside the lab's namespaces).
Root is required.

Command line::

    python -m tests.support.netns up --dir D (--inventory hosts.yml | --hosts a,b,c) [--subnet 10.231.0.0/24]
    python -m tests.support.netns spawn --dir D --name sandbox [--ready-file F] -- python -m tests.support.sandbox ...
    python -m tests.support.netns cut --dir D HOST      # and: restore --dir D HOST
    python -m tests.support.netns run --dir D HOST -- COMMAND...   # over SSH, as Ansible would
    python -m tests.support.netns down --dir D
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SSHD = Path("/usr/sbin/sshd")
DEFAULT_SUBNET = "10.231.0.0/24"
DEFAULT_PREFIX = "aigw"
DEFAULT_PRIVATE_DIR = "/etc/ai-gateway"
API_NAMESPACE = "api"
STATE_FILE = "lab.json"
INVENTORY_FILE = "inventory.yml"
FIRST_HOST_OFFSET = 11
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")


class LabError(RuntimeError):
    """A step of building, using or removing the lab failed; the message names the step and the fix."""


@dataclass
class Node:
    """One namespace of the lab: the API's or a host's."""

    name: str
    namespace: str
    address: str
    veth: str


@dataclass
class Lab:
    """What one lab consists of; stored in ``<directory>/lab.json``."""

    directory: str
    prefix: str
    subnet: str
    bridge: str
    controller_address: str
    api: Node
    hosts: list[Node] = field(default_factory=list)
    private_dir: str | None = DEFAULT_PRIVATE_DIR
    created_private_dir: bool = False
    services: dict[str, int] = field(default_factory=dict)

    # Paths -----------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return Path(self.directory)

    @property
    def client_key(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "ssh" / "known_hosts"

    @property
    def inventory(self) -> Path:
        return self.root / INVENTORY_FILE

    def host_dir(self, host: str) -> Path:
        return self.root / "hosts" / host

    def files_dir(self, host: str) -> Path:
        """The host's own directory that appears at ``private_dir`` inside its namespace."""
        return self.host_dir(host) / "private"

    def host(self, name: str) -> Node:
        for node in self.hosts:
            if node.name == name:
                return node
        raise LabError(f"no host '{name}' in the lab at {self.directory}; it has: {', '.join(self.host_names)}")

    @property
    def host_names(self) -> list[str]:
        return [node.name for node in self.hosts]

    @property
    def prefix_length(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    # Persistence -----------------------------------------------------------------------------

    def save(self) -> None:
        _write_atomically(self.root / STATE_FILE, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> Lab:
        path = directory / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LabError(f"no lab at {directory}: {path} does not exist (run `up` first)") from None
        data["api"] = Node(**data["api"])
        data["hosts"] = [Node(**node) for node in data["hosts"]]
        return cls(**data)

    # SSH -------------------------------------------------------------------------------------

    def ssh_options(self) -> list[str]:
        """Client options that trust exactly the lab's host keys and offer exactly its key."""
        return [
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
        ]

    def ssh_command(self, host: str, command: Sequence[str]) -> list[str]:
        node = self.host(host)
        remote = shlex.join(command)
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            str(self.client_key),
            *self.ssh_options(),
            f"root@{node.address}",
            remote,
        ]


# Building and removing ---------------------------------------------------------------------------


def up(
    directory: Path,
    hosts: Sequence[str] | Mapping[str, str | None],
    *,
    subnet: str = DEFAULT_SUBNET,
    prefix: str = DEFAULT_PREFIX,
    private_dir: str | None = DEFAULT_PRIVATE_DIR,
    timeout: float = 20.0,
) -> Lab:
    """Build the lab (after removing what an earlier one in the same directory left) and wait for SSH.

    ``hosts`` maps each host name to its address in ``subnet`` (None: the next free one from
    ``.11`` on), as an inventory's ``ansible_host`` does; a plain list of names gets addresses in order.
    """
    _require_root_and_tools()
    wanted = dict(hosts) if isinstance(hosts, Mapping) else dict.fromkeys(hosts)
    _check_names(list(wanted), prefix)
    directory = directory.resolve()
    if (directory / STATE_FILE).exists():
        down(directory)
    directory.mkdir(parents=True, exist_ok=True)

    network = ipaddress.ip_network(subnet)
    addresses = _host_addresses(network, wanted)
    lab = Lab(
        directory=str(directory),
        prefix=prefix,
        subnet=str(network),
        bridge=f"{prefix}br0",
        controller_address=str(network[1]),
        api=Node(API_NAMESPACE, f"{prefix}-{API_NAMESPACE}", str(network[2]), f"{prefix}v0"),
        hosts=[
            Node(name, f"{prefix}-{name}", addresses[name], f"{prefix}v{index + 1}")
            for index, name in enumerate(wanted)
        ],
        private_dir=private_dir,
    )
    _remove_leftovers(lab)
    lab.save()

    try:
        _build_network(lab)
        _write_ssh_material(lab)
        if private_dir is not None and not Path(private_dir).exists():
            # The mount point each host's own directory is bound onto; removed again by down()
            # when it is still empty.
            Path(private_dir).mkdir(parents=True)
            lab.created_private_dir = True
            lab.save()
        for node in lab.hosts:
            _start_sshd(lab, node)
        _write_inventory(lab)
        wait_for_ssh(lab, timeout=timeout)
    except BaseException:
        with contextlib.suppress(Exception):
            down(directory)
        raise
    return lab


def down(directory: Path) -> None:
    """End every process inside the lab's namespaces, then remove the namespaces and the bridge."""
    directory = directory.resolve()
    try:
        lab = Lab.load(directory)
    except LabError:
        return
    nodes = [lab.api, *lab.hosts]
    for node in nodes:
        _end_processes(_namespace_pids(node.namespace))
    for pid in lab.services.values():
        _end_processes([pid])
    for node in nodes:
        _run(["ip", "netns", "delete", node.namespace], check=False)
        _run(["ip", "link", "delete", node.veth], check=False)
    _run(["ip", "link", "delete", lab.bridge], check=False)
    if lab.created_private_dir and lab.private_dir:
        with contextlib.suppress(OSError):
            Path(lab.private_dir).rmdir()
    (directory / STATE_FILE).unlink(missing_ok=True)


def cut(lab: Lab, host: str) -> None:
    """Make the API's address unreachable from one host; SSH to it keeps working."""
    node = lab.host(host)
    _run(["ip", "-n", node.namespace, "route", "replace", "unreachable", f"{lab.api.address}/32"])


def restore(lab: Lab, host: str) -> None:
    """Undo cut(): the host reaches the API again."""
    node = lab.host(host)
    _run(["ip", "-n", node.namespace, "route", "delete", "unreachable", f"{lab.api.address}/32"], check=False)


def spawn(
    lab: Lab,
    name: str,
    argv: Sequence[str],
    *,
    namespace: str = API_NAMESPACE,
    ready_file: Path | None = None,
    timeout: float = 20.0,
) -> int:
    """Start a long-running process inside one of the lab's namespaces; down() ends it.

    With ``ready_file`` the call returns once that file exists (the sandbox writes its port file
    once it listens), and fails with the process's log if it exits first.
    """
    node = lab.api if namespace == API_NAMESPACE else lab.host(namespace)
    log_path = lab.root / f"{name}.log"
    if ready_file is not None:
        ready_file.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ["ip", "netns", "exec", node.namespace, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
            start_new_session=True,
        )
    lab.services[name] = process.pid
    lab.save()
    deadline = time.monotonic() + timeout
    while ready_file is not None and not ready_file.exists():
        if process.poll() is not None:
            raise LabError(f"{name} exited with status {process.returncode} before it was ready; see {log_path}")
        if time.monotonic() > deadline:
            raise LabError(f"{name} was not ready after {timeout:.0f} s ({ready_file} missing); see {log_path}")
        time.sleep(0.05)
    return process.pid


def wait_for_ssh(lab: Lab, *, timeout: float = 20.0) -> None:
    """Each host answers over SSH with its own name and address, or LabError names the ones that do not."""
    deadline = time.monotonic() + timeout
    pending = {node.name for node in lab.hosts}
    last_error: dict[str, str] = {}
    while pending:
        for name in sorted(pending):
            node = lab.host(name)
            proc = subprocess.run(
                lab.ssh_command(name, ["sh", "-c", "hostname; ip -4 -o addr show dev eth0"]),
                capture_output=True,
                text=True,
                timeout=30,
            )
            if proc.returncode == 0 and proc.stdout.split()[0] == name and f" {node.address}/" in proc.stdout:
                pending.discard(name)
            else:
                last_error[name] = (proc.stderr or proc.stdout).strip()[-300:]
        if pending and time.monotonic() > deadline:
            details = "; ".join(f"{name}: {last_error.get(name, '?')}" for name in sorted(pending))
            raise LabError(
                f"no SSH to {', '.join(sorted(pending))} after {timeout:.0f} s ({details}); see sshd.log there"
            )
        if pending:
            time.sleep(0.2)


def hosts_from_inventory(paths: Iterable[Path]) -> dict[str, str | None]:
    """Hosts of YAML inventories, in the order Ansible reads them, with their ``ansible_host`` if set."""
    seen: dict[str, str | None] = {}

    def walk(group: Any) -> None:
        if not isinstance(group, dict):
            return
        for host, host_vars in (group.get("hosts") or {}).items():
            address = (host_vars or {}).get("ansible_host")
            if seen.get(str(host)) is None:
                seen[str(host)] = str(address) if address else None
        for child in (group.get("children") or {}).values():
            walk(child)

    for path in paths:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        for group in data.values():
            walk(group)
    return seen


# Steps -------------------------------------------------------------------------------------------


def _require_root_and_tools() -> None:
    if os.geteuid() != 0:
        raise LabError("building network namespaces needs root")
    missing = [tool for tool in ("ip", "ssh", "ssh-keygen") if shutil.which(tool) is None]
    if not SSHD.exists():
        missing.append(str(SSHD))
    if missing:
        raise LabError(f"missing {', '.join(missing)}: run tools/ensure-sshd (Debian openssh-server, iproute2)")


def _check_names(hosts: Sequence[str], prefix: str) -> None:
    if not hosts:
        raise LabError("a lab needs at least one host")
    if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", prefix):
        raise LabError(f"prefix '{prefix}' must be 1-8 lowercase letters or digits (interface names are short)")
    bad = [host for host in hosts if not _NAME.match(host) or host == API_NAMESPACE]
    if bad:
        raise LabError(f"host names {bad} cannot name namespaces: use letters, digits, '.', '_' and '-'")
    if len(set(hosts)) != len(hosts):
        raise LabError("host names must be unique")


def _host_addresses(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network, wanted: Mapping[str, str | None]
) -> dict[str, str]:
    reserved = {network[1], network[2]}  # the controller's and the API's
    taken: dict[str, str] = {}
    for name, address in wanted.items():
        if address is None:
            continue
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise LabError(f"{name}: ansible_host '{address}' is not an IP address") from None
        if ip not in network or ip in reserved or ip in (network.network_address, network.broadcast_address):
            raise LabError(f"{name}: {address} must lie in {network} and not be .0, .1, .2 or the broadcast address")
        if str(ip) in taken.values():
            raise LabError(f"{name}: {address} is already another host's address")
        taken[name] = str(ip)
    free = (ip for ip in list(network.hosts())[FIRST_HOST_OFFSET - 1 :] if str(ip) not in taken.values())
    for name, address in wanted.items():
        if address is None:
            try:
                taken[name] = str(next(free))
            except StopIteration:
                raise LabError(f"subnet {network} has no free address left for {name}; use a larger one") from None
    return {name: taken[name] for name in wanted}


def _remove_leftovers(lab: Lab) -> None:
    """A lab of the same prefix that an interrupted run left behind would collide by name."""
    existing = set(_run(["ip", "netns", "list"]).stdout.split())
    for node in (lab.api, *lab.hosts):
        if node.namespace in existing:
            _end_processes(_namespace_pids(node.namespace))
            _run(["ip", "netns", "delete", node.namespace], check=False)
        _run(["ip", "link", "delete", node.veth], check=False, quiet=True)
    _run(["ip", "link", "delete", lab.bridge], check=False, quiet=True)


def _build_network(lab: Lab) -> None:
    _run(["ip", "link", "add", lab.bridge, "type", "bridge"])
    _run(["ip", "addr", "add", f"{lab.controller_address}/{lab.prefix_length}", "dev", lab.bridge])
    _run(["ip", "link", "set", lab.bridge, "up"])
    for node in (lab.api, *lab.hosts):
        _run(["ip", "netns", "add", node.namespace])
        _run(["ip", "link", "add", node.veth, "type", "veth", "peer", "name", "eth0", "netns", node.namespace])
        _run(["ip", "link", "set", node.veth, "master", lab.bridge, "up"])
        _run(["ip", "-n", node.namespace, "addr", "add", f"{node.address}/{lab.prefix_length}", "dev", "eth0"])
        _run(["ip", "-n", node.namespace, "link", "set", "eth0", "up"])
        _run(["ip", "-n", node.namespace, "link", "set", "lo", "up"])
    # Links come up asynchronously; wait until the bridge forwards to every namespace.
    deadline = time.monotonic() + 10
    for node in (lab.api, *lab.hosts):
        while "state UP" not in _run(["ip", "-n", node.namespace, "link", "show", "eth0"]).stdout:
            if time.monotonic() > deadline:
                raise LabError(f"eth0 in namespace {node.namespace} did not come up")
            time.sleep(0.05)


def _write_ssh_material(lab: Lab) -> None:
    ssh_dir = lab.client_key.parent
    ssh_dir.mkdir(parents=True, exist_ok=True)
    ssh_dir.chmod(0o700)
    if not lab.client_key.exists():
        _keygen(lab.client_key, "aigateway real-hosts client")
    (ssh_dir / "authorized_keys").write_text(lab.client_key.with_suffix(".pub").read_text(encoding="utf-8"))
    known: list[str] = []
    for node in lab.hosts:
        host_dir = lab.host_dir(node.name)
        host_dir.mkdir(parents=True, exist_ok=True)
        lab.files_dir(node.name).mkdir(exist_ok=True)
        host_key = host_dir / "ssh_host_ed25519_key"
        if not host_key.exists():
            _keygen(host_key, f"aigateway real-hosts {node.name}")
        key_type, key_data = host_key.with_suffix(".pub").read_text(encoding="utf-8").split()[:2]
        known.append(f"{node.address} {key_type} {key_data}")
        (host_dir / "sshd_config").write_text(_sshd_config(lab, node), encoding="utf-8")
    lab.known_hosts.write_text("\n".join(known) + "\n", encoding="utf-8")


def _sshd_config(lab: Lab, node: Node) -> str:
    host_dir = lab.host_dir(node.name)
    return "\n".join(
        [
            f"# sshd of lab host {node.name} (namespace {node.namespace})",
            f"ListenAddress {node.address}:22",
            f"HostKey {host_dir / 'ssh_host_ed25519_key'}",
            f"PidFile {host_dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {lab.client_key.parent / 'authorized_keys'}",
            "AllowUsers root",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            # The lab's files live in a work tree whose modes sshd does not insist on.
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            # Ansible opens many sessions at once (forks, ControlMaster): do not throttle them.
            "MaxStartups 200",
            "MaxSessions 100",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            "",
        ]
    )


def _start_sshd(lab: Lab, node: Node) -> None:
    host_dir = lab.host_dir(node.name)
    config = host_dir / "sshd_config"
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    test = _run([str(SSHD), "-t", "-f", str(config)], check=False)
    if test.returncode != 0:
        raise LabError(f"sshd rejects {config}: {test.stderr.strip()}")
    # Inside the host's namespace: its own hostname (UTS namespace) and its own private directory
    # (a bind mount in the mount namespace `ip netns exec` creates), then sshd, which forks into the
    # background once it listens. Its sessions inherit all of it.
    script = 'hostname "$1" && { [ -z "$2" ] || mount --bind "$3" "$2"; } && exec "$4" -f "$5" -E "$6"'
    argv = [
        "ip",
        "netns",
        "exec",
        node.namespace,
        "unshare",
        "--uts",
        "--",
        "/bin/sh",
        "-c",
        script,
        "sshd-launcher",
        node.name,
        lab.private_dir or "",
        str(lab.files_dir(node.name)),
        str(SSHD),
        str(config),
        str(host_dir / "sshd.log"),
    ]
    proc = _run(argv, check=False)
    if proc.returncode != 0:
        raise LabError(f"cannot start sshd for {node.name} in {node.namespace}: {proc.stderr.strip()}")
    deadline = time.monotonic() + 10
    while not _listening(node, 22):
        if time.monotonic() > deadline:
            log = (host_dir / "sshd.log").read_text(errors="replace")[-500:] if (host_dir / "sshd.log").exists() else ""
            raise LabError(f"sshd for {node.name} does not listen on {node.address}:22: {log}")
        time.sleep(0.05)


def _listening(node: Node, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((node.address, port)) == 0


def _write_inventory(lab: Lab) -> None:
    """How to reach each host; an inventory that names the groups adds what to deploy."""
    inventory = {
        "all": {
            "hosts": {node.name: {"ansible_host": node.address} for node in lab.hosts},
            "vars": {
                "ansible_connection": "ssh",
                "ansible_user": "root",
                "ansible_python_interpreter": "/usr/bin/python3",
                "ansible_ssh_private_key_file": str(lab.client_key),
                "ansible_ssh_host_key_checking": True,
                "ansible_ssh_pipelining": True,
                # Only the lab's key, and only the lab's host keys are trusted.
                "ansible_ssh_common_args": (
                    f"-F /dev/null -o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes"
                    " -o IdentitiesOnly=yes"
                ),
            },
        }
    }
    header = f"# Written by tests/support/netns.py for the lab in {lab.directory}; rewritten by each `up`.\n"
    _write_atomically(lab.inventory, header + yaml.safe_dump(inventory, sort_keys=False))


# Helpers -----------------------------------------------------------------------------------------


def _keygen(path: Path, comment: str) -> None:
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def _namespace_pids(namespace: str) -> list[int]:
    proc = _run(["ip", "netns", "pids", namespace], check=False, quiet=True)
    return [int(pid) for pid in proc.stdout.split() if pid.isdigit()]


def _end_processes(pids: Iterable[int], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL what is still there after the grace period."""
    pids = [pid for pid in pids if pid > 1 and pid != os.getpid()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _alive(pid)]
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        # Reap it if it is our child; a zombie would otherwise look alive.
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # An exited process whose parent has not reaped it yet is gone for our purposes.
    return stat.rpartition(")")[2].split()[0] != "Z"


def _run(argv: Sequence[str], *, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise LabError(f"`{shlex.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# Command line ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.netns", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    up_parser = commands.add_parser("up", help="build the lab and wait until every host answers over SSH")
    up_parser.add_argument("--dir", type=Path, required=True)
    source = up_parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--inventory", type=Path, action="append", help="YAML inventory naming the hosts")
    source.add_argument("--hosts", help="comma-separated host names")
    up_parser.add_argument("--subnet", default=DEFAULT_SUBNET)
    up_parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="names of namespaces and links (1-8 characters)")
    up_parser.add_argument("--private-dir", default=DEFAULT_PRIVATE_DIR, help="per-host directory ('' for none)")

    down_parser = commands.add_parser("down", help="end the lab's processes and remove its namespaces")
    down_parser.add_argument("--dir", type=Path, required=True)

    for name, help_text in (("cut", "cut a host's route to the API"), ("restore", "give a host its route back")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--dir", type=Path, required=True)
        sub.add_argument("host")

    spawn_parser = commands.add_parser("spawn", help="start a background process in a namespace (default: the API's)")
    spawn_parser.add_argument("--dir", type=Path, required=True)
    spawn_parser.add_argument("--name", required=True)
    spawn_parser.add_argument("--namespace", default=API_NAMESPACE)
    spawn_parser.add_argument("--ready-file", type=Path)
    spawn_parser.add_argument("argv", nargs=argparse.REMAINDER)

    run_parser = commands.add_parser("run", help="run a command on a host over SSH")
    run_parser.add_argument("--dir", type=Path, required=True)
    run_parser.add_argument("host")
    run_parser.add_argument("argv", nargs=argparse.REMAINDER)

    status_parser = commands.add_parser("status", help="print the lab as JSON")
    status_parser.add_argument("--dir", type=Path, required=True)

    options = parser.parse_args(argv)
    try:
        return _dispatch(options)
    except LabError as error:
        print(f"netns: {error}", file=sys.stderr)
        return 1


def _dispatch(options: argparse.Namespace) -> int:
    if options.command == "up":
        hosts = (
            hosts_from_inventory(options.inventory) if options.inventory else dict.fromkeys(options.hosts.split(","))
        )
        lab = up(
            options.dir, hosts, subnet=options.subnet, prefix=options.prefix, private_dir=options.private_dir or None
        )
        print(f"lab up: {len(lab.hosts)} hosts over SSH, API namespace at {lab.api.address}, inventory {lab.inventory}")
        return 0
    if options.command == "down":
        down(options.dir)
        return 0
    lab = Lab.load(options.dir.resolve())
    if options.command == "cut":
        cut(lab, options.host)
        print(f"{options.host}: route to the API at {lab.api.address} cut")
    elif options.command == "restore":
        restore(lab, options.host)
        print(f"{options.host}: route to the API at {lab.api.address} restored")
    elif options.command == "spawn":
        argv = options.argv[1:] if options.argv[:1] == ["--"] else options.argv
        if not argv:
            raise LabError("spawn needs a command after --")
        pid = spawn(lab, options.name, argv, namespace=options.namespace, ready_file=options.ready_file)
        print(f"{options.name}: pid {pid} in namespace {options.namespace}")
    elif options.command == "run":
        argv = options.argv[1:] if options.argv[:1] == ["--"] else options.argv
        return subprocess.run(lab.ssh_command(options.host, argv or ["true"])).returncode
    elif options.command == "status":
        print(json.dumps(asdict(lab), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
