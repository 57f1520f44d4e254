# rolesanywhere-operator: `make demo` shows it working, `make test` runs the whole suite.
# Everything is set up on first use: the .venv, and the pinned upstream binaries (hack/tools.sh).

SHELL := /bin/bash
PY := .venv/bin/python
LOCALCLUSTER := $(PY) -m localcluster

.DEFAULT_GOAL := help
# The pinned tools, and where the node can run (as root, unless ROLESANYWHERE_NODE_TESTS=skip) the node's parts
# too: the images (downloads, mostly) build alongside the Go tools (compiling), all cached.
TOOLS_AND_NODE_PARTS = @if [ "$$(id -u)" = 0 ] && [ "$${ROLESANYWHERE_NODE_TESTS:-}" != skip ]; then \
	$(MAKE) --no-print-directory -j2 tools node-parts; else $(MAKE) --no-print-directory tools; fi

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: venv
venv: ## Create .venv: the project with its test extras and the dev kit (hack/pyproject.toml), both editable
	@hack/venv.sh

.PHONY: tools
tools: ## Build the pinned kube-apiserver, etcd, cert-manager, helm, aws_signing_helper (cached)
	@hack/tools.sh build

.PHONY: test
test: venv ## Run the whole suite: unit, integration (a local control plane), node (a real node, as root) tests, then test-lowest
	$(TOOLS_AND_NODE_PARTS)
	$(PY) -m pytest
	@$(MAKE) --no-print-directory test-lowest

.PHONY: test-lowest
test-lowest: venv ## Install every runtime dependency at its pyproject floor (.venv-lowest) and run the unit tests there
	$(PY) hack/lowest_deps.py

.PHONY: test-unit
test-unit: venv ## Run the unit tests only (no cluster, no binaries)
	$(PY) -m pytest -m 'not integration'

.PHONY: lock
lock: ## Regenerate the images' hashed locks (requirements.lock, requirements-sidecar.lock, requirements-build.lock) from pyproject.toml (ARGS=--upgrade)
	@hack/lock.sh $(ARGS)

.PHONY: demo
demo: venv ## Offline end to end on the local node: the chart's operator, a pod listing S3 buckets with Roles Anywhere credentials (ARGS=--help)
	$(TOOLS_AND_NODE_PARTS)
	$(PY) hack/demo.py $(ARGS)

.PHONY: cluster-up
cluster-up: venv tools ## Start the local control plane (etcd, kube-apiserver, controller-manager, cert-manager); NODE=1 adds a real node (root)
	$(LOCALCLUSTER) up $(if $(NODE),--node)

.PHONY: cluster-down
cluster-down: venv ## Stop the local control plane
	$(LOCALCLUSTER) down

.PHONY: node-deps
node-deps: ## Install the node's Debian packages when missing (containerd, runc, CNI plugins, iptables, buildah, ...)
	@hack/node-deps.sh

.PHONY: images
images: node-deps ## Build the node's images (pause, base, the Dockerfile's, app) without a registry (cached)
	@hack/images.sh build

.PHONY: node-parts node-binaries
node-parts: node-binaries images ## Build what the node runs: kubelet, kube-proxy, kube-scheduler and the images (root; cached)

node-binaries: tools node-deps
	@hack/tools.sh node-bindir >/dev/null

.PHONY: test-node
test-node: venv node-parts ## Run the node tests alone: pods in containers on a real local node (root; also part of make test)
	$(PY) -m pytest tests/node

.PHONY: kubeconfig
kubeconfig: ## Print the local cluster's KUBECONFIG line (eval "$(make -s kubeconfig)")
	@echo "export KUBECONFIG=$(CURDIR)/.run/cluster/kubeconfig"

.PHONY: bench
bench: venv tools ## Measure sidecar, webhook and operator costs vs aws_signing_helper; writes bench/RESULTS.md (ARGS=--quick)
	$(PY) -m bench $(ARGS)

.PHONY: docs
docs: venv ## Regenerate README.md's reference tables from the CRD, the constants, the chart values and the settings
	$(PY) -m rolesanywhere_devkit.docs

.PHONY: emulator
emulator: venv ## Run the Roles Anywhere emulator (ARGS='--config FILE [--port N]'; see hack/rolesanywhere_emulator/config.py)
	.venv/bin/rolesanywhere-emulator $(ARGS)

.PHONY: lint
lint: venv ## ruff over the code and tests, mypy (strict) over the product's packages
	.venv/bin/ruff check operator sidecar hack tests bench
	.venv/bin/mypy
