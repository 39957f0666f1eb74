"""`make demo`: the main job end to end on this machine, on embedded defaults.

Starts a local OpenBao and the sandbox API (the stand-in for the real provider), stores a key,
runs `deploy.yml -l dev` against a local inventory in .demo/, shows the verification, and stops
what it started. Nothing outside .demo/ is written.
"""

from __future__ import annotations

import secrets
import shutil
import sys

from tests.support.gateway import REPO, GatewayProject
from tests.support.openbao import OpenBao
from tests.support.sandbox import SandboxServer, default_config

DEMO_DIR = REPO / ".demo"


def main() -> int:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir()
    key = f"sk-demo-{secrets.token_hex(16)}"

    with OpenBao(DEMO_DIR / "openbao") as vault, SandboxServer(default_config(key)) as api:
        vault.kv2_put("ai-gateway/dev", {"api_key": key})
        print(f"OpenBao at {vault.url}; key stored at secret/ai-gateway/dev (version 1)")
        print(f"Sandbox API at {api.base_url}")

        project = GatewayProject(
            root=DEMO_DIR,
            vault_addr=vault.url,
            vault_token=vault.root_token,
            base_url=api.base_url,
            environments={"dev": ["dev-app-1", "dev-app-2"]},
        )
        project.write_inventory()
        run = project.playbook(limit="dev", stream=True)

        print()
        if run.returncode != 0:
            print("demo: the deployment failed, see above", file=sys.stderr)
            return run.returncode
        for host in project.environments["dev"]:
            files = sorted(p.name for p in project.host_dir(host).iterdir())
            print(f"{host}: {project.host_dir(host)} holds {', '.join(files)}")
        print(f"Terraform state: {project.state_file('dev')}")
        print("demo: dev deployed and verified from every host; OpenBao and the sandbox are stopped now")
    return 0


if __name__ == "__main__":
    sys.exit(main())
