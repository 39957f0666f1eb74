# aigateway.ops: `make setup`, `make demo`, `make test`, `make bench`.
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export TF_CLI_CONFIG_FILE := $(CURDIR)/terraform/terraformrc
export CHECKPOINT_DISABLE := 1
PYTEST := $(VENV)/bin/pytest

.PHONY: setup demo test lint unit integration tftest molecule bench clean

setup: $(VENV)/.ready

$(VENV)/.ready: requirements/dev.txt requirements/runtime.txt requirements/constraints.txt tools/ensure-terraform
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements/dev.txt -c requirements/constraints.txt
	tools/ensure-terraform $(VENV)
	touch $@

demo: setup
	$(VENV)/bin/python -m tests.support.demo

test: setup lint unit tftest integration molecule

# Python scripts in tools/ have no .py suffix, so ruff is given them by name.
TOOL_SCRIPTS := tools/role-readme tools/ansible-test-sanity

lint: setup
	ruff check plugins tests bench tools $(TOOL_SCRIPTS)
	ruff format --check plugins tests bench $(TOOL_SCRIPTS)
	yamllint -s .
	terraform fmt -check -recursive terraform
	ansible-lint
	tools/role-readme --check
	antsibull-docs lint-collection-docs --plugin-docs .collections/ansible_collections/aigateway/ops
	tools/ansible-test-sanity

unit: setup
	$(PYTEST) tests/unit

tftest: setup
	cd terraform/modules/ai_gateway && terraform init -input=false -backend=false >/dev/null && terraform test

integration: setup
	tools/ensure-postgresql
	$(PYTEST) tests/integration

molecule: setup
	tools/ensure-postgresql
	molecule test --all

bench: setup
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf $(VENV) .gateway .demo tests/output
