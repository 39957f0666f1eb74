"""execution-environment.yml and meta/execution-environment.yml, through ansible-builder itself.

Building the image needs a container engine, which these machines lack; the
build context ansible-builder generates is what the engine would run, so the
tests read that.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


def _requirements(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ee") / "context"
    proc = subprocess.run(
        [
            str(VENV_BIN / "ansible-builder"),
            "create",
            "--file",
            "execution-environment.yml",
            "--context",
            str(directory),
            "--output-filename",
            "Containerfile",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return directory


def test_the_image_gets_the_collections_python_packages(context: Path) -> None:
    installed = _requirements(context / "_build" / "requirements.txt")
    assert installed == _requirements(REPO / "requirements" / "runtime.txt")
    assert "hvac>=2.3" in installed


def test_the_image_gets_the_collections_the_playbooks_use(context: Path) -> None:
    collections = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    assert collections == yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert {entry["name"] for entry in collections} >= set(galaxy["dependencies"])


def test_the_image_gets_a_checksummed_terraform_binary_on_path(context: Path) -> None:
    containerfile = (context / "Containerfile").read_text()
    builder, final = containerfile.split("FROM base AS final")
    # Downloaded and checked against the release's SHA256SUMS in the builder stage, only the binary copied on.
    assert re.search(r"curl -fsSLO \"\$\{base\}/terraform_\$\{TERRAFORM_VERSION\}_SHA256SUMS\"", builder)
    assert "sha256sum -c -" in builder
    assert "install -m 0755 /output/terraform/terraform /usr/local/bin/terraform" in final
    assert "releases.hashicorp.com" not in final
    # ansible-core and ansible-runner are installed; the final stage is what AWX runs.
    assert "ansible-core" in containerfile and "ansible-runner" in containerfile


def test_a_collection_introspection_finds_the_collections_own_dependencies() -> None:
    """meta/execution-environment.yml: what another image that installs aigateway.ops gets."""
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-builder"), "introspect", "--sanitize", str(REPO / ".collections")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    found = yaml.safe_load(proc.stdout.split("\n", 1)[1])
    python = {line.split("#")[0].strip() for line in found["python"]}
    assert python == set(_requirements(REPO / "requirements" / "runtime.txt"))
    assert any(line.startswith("openssh-clients [platform:rpm]") for line in found["system"])
