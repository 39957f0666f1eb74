"""Benchmark deploy.yml against the floors it cannot beat, and count its Vault requests.

    make bench                                   # every size: 1x1 1x10 3x10 10x50
    .venv/bin/python bench/run.py --sizes 1x1,3x10 [--knobs-size 3x10] [--write-docs]

For each size (environments x hosts; hosts are local-connection hosts with directories of their
own, as in the integration tests) it measures, in the same run and against the same OpenBao and
sandbox API:

- deploy.yml: first deploy, no-op rerun, check mode;
- floor (a): bare ``terraform init``/``plan``/``apply`` of the same generated roots, environments
  side by side (rerun and check: ``init`` and ``plan``);
- floor (b): ``bench/floor.yml``, a hand-written playbook doing the same primitive work and
  nothing else (one terraform task per environment; per host a directory, three file writes and
  one GET /models);
- Vault requests per deploy run, from the OpenBao audit log, beside floor (b) with the key read
  by community.hashi_vault's ``vault_kv2_get`` lookup in group_vars (the common pattern), used
  where floor (b) uses the key (``bench/key_uses.yml``).

On one size (``--knobs-size``) it also reruns deploy.yml with one Ansible setting changed at a
time: forks, strategy, pipelining, fact gathering. And it deploys N environments of one host each
(``--parallel-envs``) twice, with forks 25 and with forks 1, timing the plan and apply tasks with
ansible.posix's profile_tasks: whether environments are planned side by side or one after another.
Results print as Markdown, are kept as JSON under ``bench/results/``, and ``--write-docs`` puts
them into docs/benchmarks.md between its result markers.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.gateway import EXAMPLE_SETTINGS, GatewayProject, Run  # noqa: E402
from tests.support.openbao import OpenBao  # noqa: E402
from tests.support.sandbox import DEFAULT_MODELS, SandboxServer  # noqa: E402

SIZES = ("1x1", "1x10", "3x10", "10x50")
DOCS = REPO / "docs" / "benchmarks.md"
RESULTS_DIR = REPO / "bench" / "results"
TERRAFORMRC = REPO / "terraform" / "terraformrc"
KEYS: dict[Path, str] = {}  # each generated project's throwaway key
KNOBS: dict[str, dict[str, str]] = {
    "as shipped (forks 25, linear, pipelining, gathering explicit)": {},
    "forks 5": {"ANSIBLE_FORKS": "5"},
    "strategy free": {"ANSIBLE_STRATEGY": "free"},
    "pipelining off": {"ANSIBLE_PIPELINING": "False"},
    "gathering implicit": {"ANSIBLE_GATHERING": "implicit"},
}


@dataclass
class Timing:
    first: float
    rerun: float
    check: float


@dataclass
class SizeResult:
    size: str
    environments: int
    hosts: int
    deploy: Timing
    floor_terraform: Timing
    floor_playbook: Timing
    vault_deploy: dict[str, int]
    vault_hashi: dict[str, int]
    tasks_per_host: dict[str, int] = field(default_factory=dict)
    floor_tasks_per_host: dict[str, int] = field(default_factory=dict)


class BenchError(RuntimeError):
    pass


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise argparse.ArgumentTypeError(f"size '{text}' must read ENVIRONMENTSxHOSTS, e.g. 3x10")
    return int(match[1]), int(match[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated ENVxHOSTS (default: %(default)s)")
    parser.add_argument("--knobs-size", default="3x10", help="size for the Ansible settings runs ('' to skip)")
    parser.add_argument(
        "--parallel-envs", type=int, default=10, help="environments for the side-by-side planning runs (0 to skip)"
    )
    parser.add_argument("--write-docs", action="store_true", help=f"write the results into {DOCS.name}")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per size, each from scratch; the fastest counts")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    options = parser.parse_args(argv)
    sizes = [size.strip() for size in options.sizes.split(",") if size.strip()]
    for size in [*sizes, options.knobs_size] if options.knobs_size else sizes:
        parse_size(size)

    work = Path(tempfile.mkdtemp(prefix="aigateway-bench-"))
    openbao = OpenBao(work / "openbao", mode="dev")
    sandbox = SandboxServer({"models": list(DEFAULT_MODELS), "keys": []})
    results: list[SizeResult] = []
    knobs: dict[str, float | str] = {}
    started = time.time()
    try:
        openbao.start()
        sandbox.start()
        for size in sizes:
            rounds = []
            for round_ in range(1, options.repeat + 1):
                print(f"== {size} (round {round_} of {options.repeat})", flush=True)
                rounds.append(bench_size(size, work / f"{size}-{round_}", openbao, sandbox))
            results.append(fastest(rounds))
        # What is measured is kept before the next step, which may take long.
        report(results, {}, options, started)
        if options.knobs_size:
            print(f"== Ansible settings at {options.knobs_size}", flush=True)
            knobs = bench_knobs(options.knobs_size, work / f"knobs-{options.knobs_size}", openbao, sandbox)
            report([], knobs, options, started)
        if options.parallel_envs:
            print(f"== {options.parallel_envs} environments planned side by side, or one after another", flush=True)
            parallel = bench_parallel(options.parallel_envs, work / "parallel", openbao, sandbox)
            report([], {}, options, started, parallel)
    finally:
        sandbox.stop()
        openbao.close()
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def report(
    results: list[SizeResult],
    knobs: dict[str, Any],
    options: argparse.Namespace,
    started: float,
    parallel: dict[str, dict[str, float]] | None = None,
) -> None:
    sections = render(results, knobs, options, time.time() - started, parallel or {})
    print("\n".join(sections.values()), flush=True)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"{stamp}.json").write_text(
        json.dumps({"results": [_as_dict(r) for r in results], "knobs": knobs, "parallel": parallel}, indent=2) + "\n"
    )
    if options.write_docs:
        for name, text in sections.items():
            write_docs(name, text)


# One size ----------------------------------------------------------------------------------------


def bench_size(size: str, root: Path, openbao: OpenBao, sandbox: SandboxServer) -> SizeResult:
    environments, hosts = parse_size(size)
    project = new_project(root / "deploy", environments, hosts, openbao, sandbox)

    mark = openbao.audit_mark()
    first = timed(project.playbook)
    vault_deploy = vault_requests(openbao, mark)
    rerun = timed(project.playbook)
    if rerun.run.total_changed():
        raise BenchError(f"{size}: the rerun changed {rerun.run.total_changed()} task(s)\n{rerun.run.explain()}")
    check = timed(project.playbook, check=True)
    tasks = tasks_run(rerun.run)

    floor_roots = copy_roots(project, root / "floor-a")
    floor_terraform = Timing(
        first=terraform_floor(floor_roots, apply=True),
        rerun=terraform_floor(floor_roots, apply=False),
        check=terraform_floor(floor_roots, apply=False),
    )

    floor_b_roots = copy_roots(project, root / "floor-b-roots")
    floor = new_project(
        root / "floor-b",
        environments,
        hosts,
        openbao,
        sandbox,
        extra={"bench_floor_dir": str(floor_b_roots), "bench_api_key": KEYS[project.root]},
    )
    floor_first = timed(floor.playbook, "bench/floor.yml")
    floor_rerun = timed(floor.playbook, "bench/floor.yml")
    floor_playbook = Timing(
        first=floor_first.seconds,
        rerun=floor_rerun.seconds,
        check=timed(floor.playbook, "bench/floor.yml", check=True).seconds,
    )
    floor_tasks = tasks_run(floor_rerun.run)

    # The common pattern: the key read by community.hashi_vault's lookup in group_vars, used per host.
    hashi = new_project(
        root / "hashi",
        environments,
        hosts,
        openbao,
        sandbox,
        extra={
            "bench_floor_dir": str(floor_b_roots),
            "bench_api_key": "{{ lookup('community.hashi_vault.vault_kv2_get', gateway_vault_path,"
            " engine_mount_point='secret').secret.api_key }}",
        },
    )
    hashi.extra_env["ANSIBLE_HASHI_VAULT_ADDR"] = openbao.url
    mark = openbao.audit_mark()
    timed(hashi.playbook, "bench/key_uses.yml")
    vault_hashi = vault_requests(openbao, mark)

    return SizeResult(
        size=size,
        environments=environments,
        hosts=environments * hosts,
        deploy=Timing(first.seconds, rerun.seconds, check.seconds),
        floor_terraform=floor_terraform,
        floor_playbook=floor_playbook,
        vault_deploy=vault_deploy,
        vault_hashi=vault_hashi,
        tasks_per_host={"max": max(tasks.values(), default=0), "min": min(tasks.values(), default=0)},
        floor_tasks_per_host={"max": max(floor_tasks.values(), default=0), "min": min(floor_tasks.values(), default=0)},
    )


def tasks_run(run: Run) -> dict[str, int]:
    """Tasks each host ran (ok + changed) in a run, from its recap."""
    return {name: counts["ok"] + counts["changed"] for name, counts in run.recap().items()}


def fastest(rounds: list[SizeResult]) -> SizeResult:
    """Each timing's best round: on a busy machine, the least disturbed measurement."""
    best = rounds[0]
    for attribute in ("deploy", "floor_terraform", "floor_playbook"):
        timings = [getattr(result, attribute) for result in rounds]
        setattr(
            best,
            attribute,
            Timing(*(min(getattr(timing, run) for timing in timings) for run in ("first", "rerun", "check"))),
        )
    return best


def bench_knobs(size: str, root: Path, openbao: OpenBao, sandbox: SandboxServer) -> dict[str, float | str]:
    """No-op rerun of deploy.yml with one Ansible setting changed at a time."""
    environments, hosts = parse_size(size)
    project = new_project(root, environments, hosts, openbao, sandbox)
    timed(project.playbook)
    outcomes: dict[str, float | str] = {}
    for name, env in KNOBS.items():
        project.extra_env.update(env)
        try:
            began = time.monotonic()
            run = project.playbook(timeout=PLAYBOOK_TIMEOUT_SECONDS)
            seconds = time.monotonic() - began
        finally:
            for key in env:
                project.extra_env.pop(key)
        # A setting the role does not support: say how the run failed instead of timing it.
        outcomes[name] = seconds if run.returncode == 0 else failure_summary(run)
        value = outcomes[name]
        print(f"   {name}: {value if isinstance(value, str) else f'{value:.1f} s'}", flush=True)
    return outcomes


PROFILED_TASKS = {
    "plan": "aigateway.ops.gateway : Plan the environment",
    "apply": "aigateway.ops.gateway : Apply the plan",
}


def bench_parallel(
    environments: int, root: Path, openbao: OpenBao, sandbox: SandboxServer
) -> dict[str, dict[str, float]]:
    """First deploy of E environments x 1 host with forks 25 and with forks 1: the plan and apply tasks' seconds."""
    outcomes: dict[str, dict[str, float]] = {}
    for forks in ("25", "1"):
        project = new_project(root / f"forks-{forks}", environments, 1, openbao, sandbox)
        project.extra_env.update({"ANSIBLE_FORKS": forks, "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"})
        run = timed(project.playbook)
        # profile_tasks ends the run with one line per task: "<role> : <task> ---- 1.23s".
        seconds = {
            match["task"].strip(): float(match["seconds"])
            for match in re.finditer(r"(?m)^(?P<task>\S.*?) -{2,} (?P<seconds>\d+\.\d+)s$", run.run.stdout)
        }
        outcomes[forks] = {step: seconds.get(task, 0.0) for step, task in PROFILED_TASKS.items()}
        outcomes[forks]["run"] = run.seconds
        print(f"   forks {forks}: {outcomes[forks]}", flush=True)
    return outcomes


def failure_summary(run: Run) -> str:
    """How many hosts failed, and the first failure's message."""
    failed = sum(1 for counts in run.recap().values() if counts["failed"] or counts["unreachable"])
    fatal = re.search(r"(?m)^fatal: \[([^\]]+)\].*\n(?:.*\n)*?\s+msg: (.*)$", run.stdout)
    said = f"{fatal[1]}: {fatal[2].strip()}" if fatal else "see the run's output"
    return f"fails on {failed} of {len(run.recap())} hosts ({said[:160]})"


# Building blocks ---------------------------------------------------------------------------------


@dataclass
class Timed:
    seconds: float
    run: Run


# A 10x50 run of floor (b) takes over ten minutes on two cores.
PLAYBOOK_TIMEOUT_SECONDS = 3 * 3600


def timed(playbook: Any, *args: Any, **kwargs: Any) -> Timed:
    began = time.monotonic()
    run = playbook(*args, timeout=PLAYBOOK_TIMEOUT_SECONDS, **kwargs)
    seconds = time.monotonic() - began
    if run.returncode != 0:
        raise BenchError(f"{run.args} failed\n{run.explain()}")
    flags = " ".join(arg for arg in run.args[4:] if arg.startswith("--"))
    print(f"   {Path(run.args[3]).name} {flags}: {seconds:.1f} s", flush=True)
    return Timed(seconds, run)


def new_project(
    root: Path,
    environments: int,
    hosts: int,
    openbao: OpenBao,
    sandbox: SandboxServer,
    extra: dict[str, Any] | None = None,
) -> GatewayProject:
    """E environments of H hosts, each environment's key in OpenBao and accepted by the sandbox."""
    root.mkdir(parents=True, exist_ok=True)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    key = f"sk-bench-{uuid.uuid4().hex}"
    sandbox.accept_key(key)
    names = [f"e{index:02d}" for index in range(1, environments + 1)]
    for name in names:
        openbao.kv2_put(f"{prefix}/{name}", {"api_key": key})
    project = GatewayProject(
        root=root,
        vault_addr=openbao.url,
        vault_token=openbao.root_token,
        base_url=sandbox.base_url,
        environments={name: [f"{name}-h{host:02d}" for host in range(1, hosts + 1)] for name in names},
        settings={name: dict(EXAMPLE_SETTINGS["prod"]) for name in names},
        common={
            "gateway_vault_path": prefix + "/{{ gateway_environment }}",
            "bench_terraformrc": str(TERRAFORMRC),
            # The machine is shared and busy; latency is not what is measured here.
            "gateway_alert_threshold_ms": 30000,
            **(extra or {}),
        },
    )
    project.write_inventory()
    KEYS[project.root] = key
    return project


def copy_roots(project: GatewayProject, destination: Path) -> Path:
    """The deploy's generated Terraform roots, with their own state and an absolute module source."""
    module = REPO / "terraform" / "modules" / "ai_gateway"
    for root in sorted(path.parent for path in project.work_dir.glob("*/main.tf")):
        target = destination / root.name
        target.mkdir(parents=True, exist_ok=True)
        for path in [*root.glob("*.tf"), *root.glob("*.tfvars.json")]:
            shutil.copy2(path, target / path.name)
        main = (target / "main.tf").read_text()
        state = target / "terraform.tfstate"
        main = re.sub(r'(?m)^(\s*path\s*=\s*)".*"', lambda m, state=state: f'{m[1]}"{state}"', main)
        main = re.sub(r'(?m)^(\s*source\s*=\s*)".*"', lambda m: f'{m[1]}"{module}"', main)
        (target / "main.tf").write_text(main)
    return destination


def terraform_floor(roots: Path, *, apply: bool) -> float:
    """init, plan (and apply) of every root, side by side as Ansible's forks would run them."""
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(TERRAFORMRC), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}

    def one(root: Path) -> None:
        steps = [["init", "-input=false"], ["plan", "-input=false", "-out=floor.tfplan"]]
        if apply:
            steps.append(["apply", "-input=false", "floor.tfplan"])
        for step in steps:
            proc = subprocess.run(["terraform", *step], cwd=root, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise BenchError(f"terraform {step[0]} in {root} failed: {proc.stderr[-2000:]}")

    directories = sorted(path for path in roots.iterdir() if path.is_dir())
    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(25, len(directories))) as pool:
        list(pool.map(one, directories))
    seconds = time.monotonic() - began
    print(f"   terraform {'init/plan/apply' if apply else 'init/plan'}: {seconds:.1f} s", flush=True)
    return seconds


def vault_requests(openbao: OpenBao, since: int) -> dict[str, int]:
    """Requests in the audit log since a mark: logins (and token lookups), secret reads, the rest."""
    counts = {"auth": 0, "read": 0, "other": 0}
    for entry in openbao.audit_requests(since=since):
        path = entry.get("request", {}).get("path", "")
        if path.startswith("auth/"):
            counts["auth"] += 1
        elif path.startswith("secret/data/"):
            counts["read"] += 1
        else:
            counts["other"] += 1
    counts["total"] = sum(counts.values())
    return counts


# Reporting ---------------------------------------------------------------------------------------


def render(
    results: list[SizeResult],
    knobs: dict[str, Any],
    options: argparse.Namespace,
    seconds: float,
    parallel: dict[str, dict[str, float]],
) -> dict[str, str]:
    """Markdown for each measured section of docs/benchmarks.md: ``sizes``, ``knobs`` and ``parallel``."""
    command = ".venv/bin/python bench/run.py --sizes " + shlex.quote(options.sizes)
    if options.repeat != 1:
        command += f" --repeat {options.repeat}"
    command += " --knobs-size " + shlex.quote(options.knobs_size)
    command += f" --parallel-envs {options.parallel_envs}"
    defaults = (",".join(SIZES), 1, "3x10", 10)
    if (options.sizes, options.repeat, options.knobs_size, options.parallel_envs) == defaults:
        command = "make bench"
    measured = (
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, in {seconds / 60:.0f} min, with `{command}`."
    )
    sections: dict[str, str] = {}
    lines = [
        measured,
        "",
        "Seconds (the fastest of the rounds), and the ratio to each floor: (a) bare Terraform of the same roots,"
        " (b) `bench/floor.yml`.",
        "",
        "| size (envs x hosts) | run | deploy.yml | floor (a) terraform | floor (b) playbook | vs (a) | vs (b) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for run in ("first", "rerun", "check"):
            deploy = getattr(result.deploy, run)
            floor_a = getattr(result.floor_terraform, run)
            floor_b = getattr(result.floor_playbook, run)
            label = {"first": "first deploy", "rerun": "no-op rerun", "check": "check mode"}[run]
            lines.append(
                f"| {result.size} | {label} | {deploy:.1f} | {floor_a:.1f} | {floor_b:.1f} | "
                f"{deploy / floor_a:.1f}x | {deploy / floor_b:.2f}x |"
            )
    for result in results[-1:]:
        lines += [
            "",
            f"Tasks run per host in the no-op rerun (ok + changed) at {result.size}: "
            f"{result.tasks_per_host['max']} on an environment's leader, {result.tasks_per_host['min']} on the "
            f"others; floor (b) ran {result.floor_tasks_per_host['max']} on an environment's first host and "
            f"{result.floor_tasks_per_host['min']} on the others.",
        ]
    lines += [
        "",
        "Vault requests in one run, from the OpenBao audit log (auth: logins and token lookups; read: secret reads):",
        "",
        "| size | hosts | deploy.yml: auth / read / other "
        "| community.hashi_vault lookup in group_vars: auth / read / other |",
        "|---|---:|---|---|",
    ]
    for result in results:
        ours, theirs = result.vault_deploy, result.vault_hashi
        lines.append(
            f"| {result.size} | {result.hosts} | {ours['auth']} / {ours['read']} / {ours['other']} | "
            f"{theirs['auth']} / {theirs['read']} / {theirs['other']} |"
        )
    if results:
        sections["sizes"] = "\n".join(lines) + "\n"
    if knobs:
        baseline = knobs[next(iter(KNOBS))]
        lines = [
            measured,
            "",
            f"No-op rerun of deploy.yml at {options.knobs_size} with one Ansible setting changed:",
            "",
            "| setting | seconds | vs as shipped |",
            "|---|---:|---:|",
        ]
        for name, value in knobs.items():
            if isinstance(value, str) or isinstance(baseline, str):
                lines.append(f"| {name} | {value if isinstance(value, str) else f'{value:.1f}'} | - |")
            else:
                lines.append(f"| {name} | {value:.1f} | {value / baseline:.2f}x |")
        sections["knobs"] = "\n".join(lines) + "\n"
    if parallel:
        wide, narrow = parallel["25"], parallel["1"]
        lines = [
            measured,
            "",
            f"First deploy of {options.parallel_envs} environments of one host each; seconds of the whole run and of"
            " the plan and apply tasks (each task from its start on the first environment's leader to its end on"
            " the last), as ansible.posix.profile_tasks times them:",
            "",
            "| forks | whole run | plan task | apply task |",
            "|---|---:|---:|---:|",
            f"| 25 (shipped): leaders side by side | {_seconds(wide)} |",
            f"| 1: one environment after another | {_seconds(narrow)} |",
            f"| ratio | {narrow['run'] / wide['run']:.2f}x | {_ratio(narrow['plan'], wide['plan'])} "
            f"| {_ratio(narrow['apply'], wide['apply'])} |",
        ]
        sections["parallel"] = "\n".join(lines) + "\n"
    return sections


def _seconds(timings: dict[str, float]) -> str:
    return " | ".join(f"{timings[step]:.1f}" for step in ("run", "plan", "apply"))


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator else "-"


def write_docs(section: str, report: str) -> None:
    """Replace one section of docs/benchmarks.md, between its markers."""
    start, end = f"<!-- bench:{section}:start -->", f"<!-- bench:{section}:end -->"
    text = DOCS.read_text()
    if start not in text or end not in text:
        raise BenchError(f"{DOCS} has no {start} ... {end} markers")
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    DOCS.write_text(f"{head}{start}\n{report}{end}{tail}")


def _as_dict(result: SizeResult) -> dict[str, Any]:
    return dataclasses.asdict(result)


if __name__ == "__main__":
    sys.exit(main())
