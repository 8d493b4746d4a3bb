# Image of the manager, used by `make deploy`.
IMG ?= ghcr.io/seek-api/seek-operator-manager:v0.1.0
# CHART is the Helm chart; `make manifests` copies the generated CRDs and RBAC into its files/.
CHART ?= charts/seek-operator

# Setting SHELL to bash allows bash commands to be executed by recipes.
# Options are set to exit when a recipe line exits non-zero or a piped command fails.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

# Passed through to hack/k8s-binaries.sh and the tests when set (in the environment or on the make
# command line), and left unset otherwise:
#   SEEK_CACHE_DIR      where the control-plane binaries are cached (default ~/.cache/seek-operator)
#   KUBEBUILDER_ASSETS  a directory that already holds the binaries: nothing is built
#   K8S_VERSION, ETCD_VERSION  versions to fetch (default: from go.mod, and v3.7.3)
#   SEEK_DOWNLOAD       auto (default): download the official releases, build if unreachable; never: build
PASSTHROUGH_VARS := SEEK_CACHE_DIR KUBEBUILDER_ASSETS K8S_VERSION ETCD_VERSION SEEK_DOWNLOAD
$(foreach v,$(PASSTHROUGH_VARS),$(if $(filter undefined,$(origin $(v))),,$(eval export $(v))))

# One build configuration for every go command run here: the tests, vet, the tools, and the images'
# static binaries (internal/images: CGO off, -trimpath). The build cache keys a compiled package by
# these settings, so with one configuration each package compiles once; with the go command's
# defaults (cgo on, full paths), a cold run compiled every dependency of the images twice.
export CGO_ENABLED := 0
export GOFLAGS := -trimpath $(GOFLAGS)

# Binaries `make k8s-binaries` builds.
K8S_BINARIES ?= etcd kube-apiserver kube-controller-manager
# Extra arguments for `make run` (cmd/seek-local up), `make run-dev` (cmd/seek-dev) and `make bench` (test/bench).
RUN_ARGS ?=
BENCH_ARGS ?=
# Extra flags for go test, e.g. TEST_ARGS='-run TestCancel -v'.
TEST_ARGS ?=

# Packages that need a control plane (etcd + kube-apiserver) to test: those under test/ and those whose
# code or tests depend on controller-runtime's envtest (directly or through internal/controlplane).
# Computed by the recipes that need it, not when the Makefile is read.
MODULE := github.com/seek-api/seek-operator
list-integration-pkgs = go list -e -test -f '{{with .ForTest}}{{.}}{{else}}{{.ImportPath}}{{end}} {{join .Deps " "}}' ./... | \
	awk '$$1 !~ /\.test$$/ && $$1 != "$(MODULE)/test/e2e" && ($$1 ~ "^$(MODULE)/test/" || / sigs\.k8s\.io\/controller-runtime\/pkg\/envtest( |$$)/) { print $$1 }' | sort -u
list-unit-pkgs = comm -23 <(go list -e ./... | grep -v '^$(MODULE)/test/e2e$$' | sort -u) <($(list-integration-pkgs))

.PHONY: all
all: build

##@ General

# The help target prints out all targets with their descriptions organized
# beneath their categories. The categories are represented by '##@' and the
# target descriptions by '##'. The awk command is responsible for reading the
# entire set of makefiles included in this invocation, looking for lines of the
# file as xyz: ## something, and then pretty-format the target and help. Then,
# if there's a line with ##@ something, that gets pretty-printed as a category.
# More info on the usage of ANSI control characters for terminal formatting:
# https://en.wikipedia.org/wiki/ANSI_escape_code#SGR_parameters
# More info on the awk command:
# http://linuxcommand.org/lc3_adv_awk.php

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

# The markers live in api/ (CRDs) and controllers/ (+kubebuilder:rbac); scanning only those keeps
# controller-gen from loading test/ and cmd/ packages. Put new rbac markers in controllers/.
.PHONY: manifests
manifests: controller-gen ## Generate the manager's RBAC (config/rbac/role.yaml) and CRDs (config/crd/bases), and copy them into the Helm chart.
	$(CONTROLLER_GEN) rbac:roleName=seek-manager-role crd webhook paths="./api/...;./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@rm -rf $(CHART)/files && mkdir -p $(CHART)/files/crds $(CHART)/files/rbac $(CHART)/files/policy
	@cp config/crd/bases/*.yaml $(CHART)/files/crds/
	@cp config/rbac/role.yaml $(CHART)/files/rbac/
	@cp config/policy/seekjob-input-immutable.yaml $(CHART)/files/policy/

.PHONY: generate
generate: controller-gen ## Generate the DeepCopy methods of the API types (api/v1alpha1/zz_generated.deepcopy.go) and the tests' OpenAPI client (test/integration/openapiclient, oapi-codegen).
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."
	go generate ./test/integration/openapiclient

.PHONY: fmt
fmt: ## Run go fmt against the code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against the code (the end-to-end tests, behind the e2e build tag, included). `make test` does not: `make lint` runs govet.
	go vet ./...
	go vet -tags e2e ./test/e2e

.PHONY: verify
verify: manifests generate fmt ## Check that generated files and formatting are committed and that no binary or file over 1 MiB is tracked (run on a clean tree).
	@if ! git diff --quiet -- api/ config/ charts/ '*.go'; then \
		git --no-pager diff --stat -- api/ config/ charts/ '*.go'; \
		echo >&2 "verify: the files above change when regenerated or formatted."; \
		echo >&2 "verify: run 'make manifests generate fmt' and commit the result."; \
		exit 1; \
	fi
	@untracked=$$(git status --porcelain --untracked-files=all -- api/ config/ charts/ | grep '^??' || true); \
	if [[ -n "$$untracked" ]]; then \
		echo "$$untracked"; \
		echo >&2 "verify: the files above are not committed; commit them (or delete them if stale)."; \
		exit 1; \
	fi
	@$(MAKE) --no-print-directory verify-tracked
	@echo "verify: generated files and formatting are up to date; no build outputs are tracked."

.PHONY: lint
lint: golangci-lint ## Run golangci-lint (.golangci.yml): correctness linters and the dependency-direction rules (docs/conventions.md).
	$(GOLANGCI_LINT) run ./...

.PHONY: lint-openapi
lint-openapi: redocly ## Lint the REST API's OpenAPI document (internal/frontend/openapi.json) with Redocly CLI: its recommended rules, warnings as errors (redocly.yaml).
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(REDOCLY) lint

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint and apply its fixes (formatting, imports).
	$(GOLANGCI_LINT) run --fix ./...

.PHONY: verify-tracked
verify-tracked: ## Fail if Git tracks a build output: an executable binary or a file over 1 MiB (hack/verifytracked).
	@go run ./hack/verifytracked

.PHONY: test
test: manifests generate fmt verify-tracked lint lint-openapi ## Run all tests, building the Kubernetes binaries and helm first if needed; the end-to-end tests run last, alone (their node saturates the machine).
	@assets="$$(hack/k8s-binaries.sh)"; helm="$$(hack/helm.sh)"; \
	echo "KUBEBUILDER_ASSETS=$$assets HELM=$$helm"; \
	KUBEBUILDER_ASSETS="$$assets" HELM="$$helm" go test ./... -count=1 $(TEST_ARGS) && \
	KUBEBUILDER_ASSETS="$$assets" HELM="$$helm" go test -tags e2e ./test/e2e -count=1 -timeout 45m $(TEST_ARGS)

.PHONY: test-e2e
test-e2e: ## Run the end-to-end tests on the local cluster (kept if up, else brought up and removed; root; SEEK_E2E=skip skips them).
	@assets="$$(hack/k8s-binaries.sh)"; helm="$$(hack/helm.sh)"; \
	echo "KUBEBUILDER_ASSETS=$$assets HELM=$$helm"; \
	KUBEBUILDER_ASSETS="$$assets" HELM="$$helm" go test -tags e2e ./test/e2e -count=1 -timeout 45m $(TEST_ARGS)

.PHONY: chaos
chaos: ## Run only the end-to-end chaos test (TestChaos, part of test-e2e): 2,000 jobs through manager pod deletions, a kubelet and an apiserver restart and a hanging webhook receiver (~12 min; root).
	@assets="$$(hack/k8s-binaries.sh)"; helm="$$(hack/helm.sh)"; \
	echo "KUBEBUILDER_ASSETS=$$assets HELM=$$helm"; \
	KUBEBUILDER_ASSETS="$$assets" HELM="$$helm" go test -tags e2e ./test/e2e -count=1 -timeout 30m -run '^TestChaos$$' -v $(TEST_ARGS)

.PHONY: test-unit
test-unit: ## Run the tests that need no control plane.
	@pkgs="$$($(list-unit-pkgs))"; \
	if [[ -z "$$pkgs" ]]; then echo "test-unit: no packages"; exit 0; fi; \
	go test $$pkgs -count=1 $(TEST_ARGS)

.PHONY: test-integration
test-integration: manifests ## Run the tests that need a control plane (etcd + kube-apiserver) or helm (the chart).
	@pkgs="$$($(list-integration-pkgs))"; \
	if [[ -z "$$pkgs" ]]; then echo "test-integration: no packages"; exit 0; fi; \
	assets="$$(hack/k8s-binaries.sh)"; helm="$$(hack/helm.sh)"; \
	echo "KUBEBUILDER_ASSETS=$$assets HELM=$$helm"; \
	KUBEBUILDER_ASSETS="$$assets" HELM="$$helm" go test $$pkgs -count=1 $(TEST_ARGS)

.PHONY: bench
bench: manifests ## Run the benchmarks (test/bench): a local control plane, then real worker pods on the local cluster.
	@assets="$$(hack/k8s-binaries.sh)"; helm="$$(hack/helm.sh)"; \
	echo "KUBEBUILDER_ASSETS=$$assets HELM=$$helm"; \
	KUBEBUILDER_ASSETS="$$assets" HELM="$$helm" go run ./test/bench $(BENCH_ARGS)

.PHONY: k8s-binaries
k8s-binaries: ## Download or build (once, cached) the control-plane binaries and print their directory: K8S_BINARIES="etcd kube-apiserver ...".
	hack/k8s-binaries.sh $(K8S_BINARIES)

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary (bin/manager).
	go build -o bin/manager ./cmd/manager

.PHONY: run
run: manifests generate fmt vet ## Run Seek on a local single-node Kubernetes cluster (cmd/seek-local up; root): REST API on localhost:8080.
	@assets="$$(hack/k8s-binaries.sh etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)"; \
	helm="$$(hack/helm.sh)"; \
	go run ./cmd/seek-local up --assets "$$assets" --helm "$$helm" $(RUN_ARGS)

.PHONY: status
status: ## Show the state of the local cluster (cmd/seek-local status).
	@go run ./cmd/seek-local status

.PHONY: down
down: ## Stop the local cluster and undo every change it made to the host (binaries and images stay cached).
	@go run ./cmd/seek-local down

.PHONY: run-dev
run-dev: manifests generate fmt vet ## Run a control plane + the manager and frontend in one process (cmd/seek-dev; no root, no worker pods).
	@assets="$$(hack/k8s-binaries.sh etcd kube-apiserver kube-controller-manager kubectl)"; \
	echo "KUBEBUILDER_ASSETS=$$assets"; \
	KUBEBUILDER_ASSETS="$$assets" go run ./cmd/seek-dev $(RUN_ARGS)

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests ## Install the CRDs and their admission policy into the cluster of the current kubeconfig.
	$(KUBECTL) apply --server-side -k config/crd
	$(KUBECTL) apply --server-side -k config/policy

.PHONY: uninstall
uninstall: manifests ## Uninstall the CRDs and policy from the cluster of the current kubeconfig. Call with ignore-not-found=true to ignore missing resources.
	$(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -k config/policy
	$(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy CRDs, RBAC and the manager (image IMG) to the cluster of the current kubeconfig.
	@mkdir -p $(LOCALBIN)/deploy
	@img='$(IMG)'; \
	if [[ "$$img" == *@* ]]; then name="$${img%@*}"; ref="digest: $${img#*@}"; \
	elif [[ "$${img##*/}" == *:* ]]; then name="$${img%:*}"; ref="newTag: \"$${img##*:}\""; \
	else name="$$img"; ref="newTag: latest"; fi; \
	{ \
		echo "# Generated by 'make deploy': config/default with the manager image set to $$img."; \
		echo "apiVersion: kustomize.config.k8s.io/v1beta1"; \
		echo "kind: Kustomization"; \
		echo "resources:"; \
		echo "- $$(realpath --relative-to="$(LOCALBIN)/deploy" "$(CURDIR)/config/default")"; \
		echo "images:"; \
		echo "- name: ghcr.io/seek-api/seek-operator-manager"; \
		echo "  newName: $$name"; \
		echo "  $$ref"; \
	} >$(LOCALBIN)/deploy/kustomization.yaml
	$(KUBECTL) apply --server-side -k $(LOCALBIN)/deploy

.PHONY: undeploy
undeploy: ## Remove what deploy created (CRDs included, so every SeekJob and SeekWorker too). Call with ignore-not-found=true to ignore missing resources.
	$(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -k config/default

##@ Dependencies

## Location to install dependencies to
LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p $(LOCALBIN)

## Tool Binaries
KUBECTL ?= kubectl
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
REDOCLY ?= $(LOCALBIN)/redocly-cli-$(REDOCLY_CLI_VERSION)/node_modules/.bin/redocly

## Tool Versions
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
# Redocly CLI, from the npm registry; it needs Node.js 20.19+ or 22.12+ and npm (.ci/run installs them).
REDOCLY_CLI_VERSION ?= 2.77.0

# controller-gen is phony so that the version check below runs every time: a bin/controller-gen of
# another version is replaced.
.PHONY: controller-gen
controller-gen: $(LOCALBIN) ## Install controller-gen (CONTROLLER_TOOLS_VERSION) in bin/ if missing or of another version.
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: golangci-lint
golangci-lint: $(LOCALBIN) ## Install golangci-lint (GOLANGCI_LINT_VERSION) in bin/ if missing or of another version.
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

# Redocly CLI ships as one npm package with its dependencies bundled; it is installed whole (into a
# temporary directory, then moved) so that an interrupted install is not taken for a finished one.
.PHONY: redocly
redocly: $(LOCALBIN) ## Install Redocly CLI (REDOCLY_CLI_VERSION) in bin/ with npm if missing.
	@[ -x "$(REDOCLY)" ] || { \
	set -e; \
	dir="$(LOCALBIN)/redocly-cli-$(REDOCLY_CLI_VERSION)"; \
	if ! command -v npm >/dev/null; then echo >&2 "redocly: npm is not installed (apt-get install nodejs npm; Node.js 20.19+ or 22.12+)"; exit 1; fi; \
	echo "Installing @redocly/cli@$(REDOCLY_CLI_VERSION) in $$dir"; \
	rm -rf "$$dir" "$$dir.tmp"; \
	npm install --prefix "$$dir.tmp" --no-save --no-audit --no-fund --ignore-scripts --loglevel=error "@redocly/cli@$(REDOCLY_CLI_VERSION)"; \
	mv "$$dir.tmp" "$$dir"; \
	}

# go-install-tool will 'go install' any package with custom target and name of binary, if it doesn't exist
# $1 - target path with name of binary
# $2 - package url which can be installed
# $3 - specific version of package
# A plain (non-symlink) binary already at $1 that was built from $2's module at version $3 is adopted
# instead of rebuilt.
define go-install-tool
@[ -f "$(1)-$(3)" ] && [ "$$(readlink -- "$(1)" 2>/dev/null)" = "$$(basename "$(1)-$(3)")" ] || { \
set -e; \
package=$(2)@$(3) ;\
if [ -f "$(1)" ] && [ ! -L "$(1)" ] && go version -m "$(1)" 2>/dev/null | awk -v v="$(3)" '$$1 == "mod" && $$3 == v { found = 1 } END { exit !found }'; then \
echo "Using existing $(1) ($(3))" ;\
mv -f "$(1)" "$(1)-$(3)" ;\
elif [ ! -f "$(1)-$(3)" ]; then \
echo "Downloading $${package}" ;\
rm -f "$(1)" ;\
GOBIN="$(LOCALBIN)" go install $${package} ;\
mv -f "$(1)" "$(1)-$(3)" ;\
fi ;\
ln -sfn "$$(basename "$(1)-$(3)")" "$(1)" ;\
}
endef
