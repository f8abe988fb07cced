# pgops.runbook -- development tasks. `make test` is what CI runs (.ci/run).
#
#   make venv             .venv with requirements-dev.txt (+ tests/quality/requirements.txt)
#   make collection-path  .build/collections/ansible_collections/pgops/runbook -> this tree
#   make unit             pytest tests/unit
#   make integration      pytest tests/integration in 2 processes (throw-away PostgreSQL servers)
#   make lint             ansible-lint, production profile, offline
#   make molecule         molecule test of every role's scenario (extensions/molecule), one after
#                         another; MOLECULE_ARGS='-s backup' runs one
#   make sanity           ansible-test sanity on the current working tree
#   make core-2.21        unit tests and the AWX-job and health integration tests on
#                         ansible-core 2.21 (Python >= 3.12, .venv-2.21); CORE_TESTS=tests/integration: all
#   make docs             ansible-doc for every module + antsibull-docs lint
#   make changelog-lint   antsibull-changelog checks + release dry run
#   make changelog        regenerate CHANGELOG.md
#   make changelog-release  antsibull-changelog release (galaxy.yml version)
#   make test             lint, changelog-lint, docs, unit, sanity, integration, core-2.21:
#                         cheap checks first, stops at the first failure, summary
#   make demo             tests/harness/demo.py
#   make clean            remove .build, tests/output, caches (keeps .venv)
#   make distclean        clean, and remove .venv
#
# Nothing here needs apt packages: PostgreSQL comes from the machine, every
# Python tool from the package index through pip.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-print-directory

ROOT := $(patsubst %/,%,$(dir $(realpath $(firstword $(MAKEFILE_LIST)))))
PYTHON ?= python3
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.pgops-requirements.stamp
REQUIREMENTS := requirements.txt requirements-dev.txt tests/quality/requirements.txt tests/quality/requirements-tests.txt \
                tests/quality/requirements-roles.txt

COLLECTIONS := $(ROOT)/.build/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/pgops/runbook
# ansible-lint and antsibull-docs get a HOME of their own, so nothing they
# cache or install (a copy of this collection above all) lands in ~/.ansible
# and later shadows the working tree.
TOOL_HOME := $(ROOT)/.build/home

# Extra arguments: make unit PYTEST_ARGS='-k health -x'; make sanity SANITY_ARGS='--test pylint'
PYTEST_ARGS ?=
INTEGRATION_WORKERS ?= 2
SANITY_ARGS ?=
SANITY_PYTHON ?= 3.11
export VENV SANITY_ARGS SANITY_PYTHON

.PHONY: help venv collection-path unit integration core-2.21 lint molecule sanity docs changelog-lint changelog \
        changelog-release test demo clean distclean

help:
	@awk 'NR > 1 && /^$$/ { exit } NR > 1 { sub(/^# ?/, ""); print }' $(firstword $(MAKEFILE_LIST))

## venv: reinstalls only when a requirements file is newer than the stamp.
venv: $(VENV_STAMP)
	@:

$(VENV_STAMP): $(addprefix $(ROOT)/,$(REQUIREMENTS))
	@if ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
	    echo "venv: creating $(VENV) with $$($(PYTHON) --version 2>&1)"; \
	    rm -rf $(VENV); \
	    $(PYTHON) -m venv $(VENV); \
	fi
	@echo "venv: installing $(REQUIREMENTS)"
	@cd $(ROOT) && $(BIN)/python -m pip install -qq $(addprefix -r ,$(REQUIREMENTS))
	@touch $@

## collection-path: relative symlink, so it survives moving the checkout;
## tests/harness/collection.py makes the same link when it is missing.
collection-path:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@if [ "$$(realpath -q $(COLLECTION_LINK))" != "$(ROOT)" ]; then \
	    rm -f $(COLLECTION_LINK); \
	    ln -s ../../../.. $(COLLECTION_LINK); \
	    echo "collection-path: $(COLLECTION_LINK) -> $(ROOT)"; \
	fi

unit: venv collection-path
	@$(ROOT)/tests/quality/pytest.sh tests/unit $(PYTEST_ARGS)

## integration: pytest-xdist, INTEGRATION_WORKERS processes (each with its own PostgreSQL
## cluster and moto server); a file's tests stay in one process, so module fixtures are made once
## (tests/conftest.py groups them; each molecule scenario is a group of its own).
## INTEGRATION_WORKERS=0 runs the suite in this one process.
integration: venv collection-path
	@$(ROOT)/tests/quality/system-packages.sh
	@$(ROOT)/tests/quality/pytest.sh tests/integration -n $(INTEGRATION_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: venv collection-path
	@mkdir -p $(TOOL_HOME)
	@echo "lint: ansible-lint (profile and exclusions: .ansible-lint)"
	@cd $(ROOT) && HOME=$(TOOL_HOME) PATH=$(BIN):$$PATH ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) \
	    $(BIN)/ansible-lint $$([ -t 1 ] || echo --nocolor)

## molecule: each scenario converges its role on this machine against a throw-away PostgreSQL
## cluster of its own (no containers). molecule keeps its ephemeral directories under a HOME of
## its own; a cluster an interrupted run left behind (its facts still there) is destroyed first.
## The same runs are part of make integration (tests/integration/test_molecule.py).
MOLECULE_ARGS ?= --all
MOLECULE_HOME := $(ROOT)/.build/molecule-home
molecule: venv collection-path
	@mkdir -p $(MOLECULE_HOME)
	@cd $(ROOT) && export HOME=$(MOLECULE_HOME) PATH=$(BIN):$$PATH ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) && \
	    if compgen -G '$(MOLECULE_HOME)/.ansible/tmp/molecule.*/pgops-cluster.json' >/dev/null; then \
	        $(BIN)/molecule destroy --all; \
	    fi && \
	    $(BIN)/molecule test $(MOLECULE_ARGS)

sanity: venv
	@$(ROOT)/tests/quality/sanity.sh

## core-2.21: ansible-core 2.21 needs Python >= 3.12; without one on the machine, a note and no failure.
core-2.21: collection-path
	@$(ROOT)/tests/quality/system-packages.sh
	@$(ROOT)/tests/quality/core.sh 2.21

docs: venv collection-path
	@mkdir -p $(TOOL_HOME)
	@HOME=$(TOOL_HOME) $(ROOT)/tests/quality/docs.sh

changelog-lint: venv
	@mkdir -p $(TOOL_HOME)
	@HOME=$(TOOL_HOME) $(BIN)/python $(ROOT)/tests/quality/changelog.py lint

changelog: venv
	@$(BIN)/python $(ROOT)/tests/quality/changelog.py generate

## changelog-release: for the release manager, after bumping galaxy.yml's version.
changelog-release: venv
	cd $(ROOT) && PATH=$(BIN):$$PATH $(BIN)/antsibull-changelog release

## test: cheap and fast first; stops at the first failing step (KEEP_GOING=1 runs them all).
test:
	@mkdir -p $(ROOT)/.build
	@# the ansible-core 2.21 virtualenv is installed meanwhile; its step waits for it
	@$(ROOT)/tests/quality/core.sh 2.21 --prepare >$(ROOT)/.build/core-2.21-prepare.log 2>&1 &
	@$(MAKE) venv collection-path
	@$(ROOT)/tests/quality/run-steps.sh "lint,changelog-lint,docs,unit|sanity" integration core-2.21

demo: venv collection-path
	cd $(ROOT) && $(BIN)/python tests/harness/demo.py

clean:
	rm -rf $(ROOT)/.build $(ROOT)/tests/output $(ROOT)/.pytest_cache
	find $(ROOT) \( -name .venv -o -name .git \) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
