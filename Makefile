# Herald: a bare-metal LoadBalancer for Kubernetes. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT           := $(CURDIR)
BIN            := $(ROOT)/bin
CACHE          := $(ROOT)/.cache
# The Kubernetes versions the tests run against (the client libraries' versions are in go.mod).
# KUBE_VERSION: `make test` (every package), the labs and the cluster lab's kubelets.
# KUBE_VERSION_LATEST: a second pass of the API server tests (test-apiserver-latest), with the etcd
# release that Kubernetes version is tested with (Debian's etcd-server 3.4 is older than it supports).
KUBE_VERSION        ?= v1.33.13
KUBE_ASSETS         := $(CACHE)/kube/$(KUBE_VERSION)
KUBE_VERSION_LATEST ?= v1.36.3
ETCD_VERSION_LATEST ?= v3.6.8
KUBE_ASSETS_LATEST  := $(CACHE)/kube/$(KUBE_VERSION_LATEST)
export KUBEBUILDER_ASSETS := $(KUBE_ASSETS)

# Pinned tools, installed into ./bin with the version in the name.
CONTROLLER_GEN_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION  ?= v2.6.2
HELM_VERSION           ?= v3.22.0
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
GOLANGCI_LINT  := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
# The linter's cache lives in the checkout: a cache shared with other checkouts once kept stale
# results after go.mod changed (an unused //nolint reported, then not, for the same code).
export GOLANGCI_LINT_CACHE ?= $(CURDIR)/.cache/golangci-lint
HELM           := $(BIN)/helm-$(HELM_VERSION)

# Debian packages the tests and the lab use (installed by `make deps` when missing).
# The cluster lab (e2e/cluster) adds containerd, runc, the CNI plugins, conntrack and iptables for
# kube-proxy's iptables mode, and util-linux's nsenter/unshare.
DEB_PACKAGES := etcd-server frr iproute2 iputils-ping iputils-arping ndisc6 tcpdump nftables curl procps \
                containerd runc containernetworking-plugins conntrack iptables util-linux

GO_TEST_FLAGS ?= -count=1 -timeout 45m

##@ General
.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*##/ {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2} /^##@/ {printf "\n%s\n", substr($$0, 5)}' $(MAKEFILE_LIST)

##@ Build
.PHONY: build
build: ## Build bin/herald-controller, bin/herald-speaker and bin/kubectl-herald (the kubectl plugin).
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/herald-controller ./controller
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/herald-speaker ./speaker
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/kubectl-herald ./cmd/kubectl-herald

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy code, CRD YAML and RBAC roles (from +kubebuilder:rbac markers) with controller-gen.
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=manifests/crds
	$(CONTROLLER_GEN) rbac:roleName=herald-controller paths=./controller/... output:rbac:artifacts:config=manifests/rbac/controller
	$(CONTROLLER_GEN) rbac:roleName=herald-speaker paths=./speaker/... output:rbac:artifacts:config=manifests/rbac/speaker
	$(CONTROLLER_GEN) rbac:roleName=herald-metrics-auth paths=./internal/metrics output:rbac:artifacts:config=manifests/rbac/metrics

##@ Checks
.PHONY: verify
verify: generate $(GOLANGCI_LINT) ## Regenerate and fail on any diff; gofmt, go vet and golangci-lint.
	@if ! git diff --quiet -- api manifests; then git --no-pager diff --stat -- api manifests; \
	  echo "generated files are out of date: run 'make generate' and commit the result"; exit 1; fi
	@if [ -n "$$(git ls-files --others --exclude-standard -- api manifests)" ]; then \
	  git ls-files --others --exclude-standard -- api manifests; echo "untracked generated files: commit them"; exit 1; fi
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi
	@go mod tidy -diff >/dev/null || { go mod tidy -diff; echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; exit 1; }
	go vet ./...
	$(GOLANGCI_LINT) run --allow-serial-runners ./...
	cd hack/promql && GOWORK=off go mod tidy -diff >/dev/null && GOWORK=off go vet ./... && $(GOLANGCI_LINT) run --allow-serial-runners --config ../../.golangci.yml ./...

.PHONY: test
test: deps kube-assets kube-assets-latest cluster-assets ## Install what the tests need and run every test this machine can run, then the API server tests against KUBE_VERSION_LATEST.
	rc=0; HERALD_REQUIRE_APISERVER=1 HERALD_KUBE_VERSION=$(KUBE_VERSION) go test $(GO_TEST_FLAGS) ./... || rc=$$?; \
	  $(MAKE) --no-print-directory test-apiserver-latest || rc=1; exit $$rc

# The packages whose tests start a kube-apiserver through internal/testing/testenv, without the labs (e2e/...).
APISERVER_TEST_PKGS = $(shell go list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... | \
  awk '$$1 !~ /\/e2e(\/|$$)/ { for (i = 2; i <= NF; i++) if ($$i ~ /\/internal\/testing\/testenv$$/) { print $$1; break } }')

.PHONY: test-apiserver-latest
test-apiserver-latest: kube-assets-latest ## Run the API server tests (APISERVER_TEST_PKGS) against kube-apiserver KUBE_VERSION_LATEST.
	KUBEBUILDER_ASSETS=$(KUBE_ASSETS_LATEST) HERALD_REQUIRE_APISERVER=1 HERALD_KUBE_VERSION=$(KUBE_VERSION_LATEST) \
	  go test $(GO_TEST_FLAGS) $(APISERVER_TEST_PKGS)

.PHONY: test-unit
test-unit: ## Run the tests that need neither root nor an API server (others skip).
	go test -count=1 -short ./...

##@ Measurements
BENCH_PKGS_MEASURE ?= ./controller/service/ ./speaker/agent/ ./speaker/layer2/ ./speaker/bgp/ ./speaker/members/ ./e2e/ ./e2e/scale/ ./e2e/cluster/
.PHONY: bench
bench: deps kube-assets cluster-assets build $(HELM) ## Run the benchmarks; write bench/report.json and bench/REPORT.md.
	mkdir -p bench
	{ go test -count=1 -run '^$$' -bench . -benchmem ./controller/allocator/ || echo "BENCH-FAILED ./controller/allocator/"; \
	  for p in $(BENCH_PKGS_MEASURE); do [ -d "$$p" ] || continue; \
	    HERALD_BENCH=1 HERALD_REQUIRE_APISERVER=1 go test -count=1 -timeout 60m -run 'Measure|^TestBench' -v $$p || echo "BENCH-FAILED $$p"; done ; } 2>&1 | tee bench/raw.txt
	go run ./hack/benchreport -in bench/raw.txt -out bench
	@# A failed measurement (a goal asserted by its test, or a broken run) fails make bench, after
	@# every other package has run and the report is written.
	@if grep -q '^BENCH-FAILED' bench/raw.txt; then grep '^BENCH-FAILED' bench/raw.txt; exit 1; fi

##@ Dependencies
.PHONY: deps
deps: ## Install the Debian packages the tests use (apt-get, root only) when missing.
	@missing=""; for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run as root, or apt-get install them)"; exit 1; fi; \
	  echo "installing:$$missing"; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

.PHONY: kube-assets
kube-assets: $(KUBE_ASSETS)/kube-apiserver $(KUBE_ASSETS)/etcd ## Build kube-apiserver and kubectl (cached in .cache/) and link etcd.

$(KUBE_ASSETS)/kube-apiserver:
	KUBE_VERSION=$(KUBE_VERSION) hack/build-kube.sh $(KUBE_ASSETS)

# The cluster lab's node and control-plane binaries, built like kube-apiserver (same version, cached).
CLUSTER_BINARIES := kubelet kube-proxy kube-controller-manager kube-scheduler
.PHONY: cluster-assets
cluster-assets: kube-assets $(addprefix $(KUBE_ASSETS)/,$(CLUSTER_BINARIES)) ## Build kubelet, kube-proxy, kube-controller-manager, kube-scheduler (cached in .cache/).

$(addprefix $(KUBE_ASSETS)/,$(CLUSTER_BINARIES)):
	KUBE_VERSION=$(KUBE_VERSION) hack/build-kube.sh $(KUBE_ASSETS) $(CLUSTER_BINARIES)

$(KUBE_ASSETS)/etcd: | deps
	mkdir -p $(KUBE_ASSETS) && ln -sf "$$(command -v etcd)" $@

.PHONY: kube-assets-latest
kube-assets-latest: $(KUBE_ASSETS_LATEST)/kube-apiserver $(KUBE_ASSETS_LATEST)/kubectl $(KUBE_ASSETS_LATEST)/etcd ## Build kube-apiserver, kubectl and etcd for KUBE_VERSION_LATEST (cached in .cache/).

# build-kube.sh builds whichever of the two is missing.
$(KUBE_ASSETS_LATEST)/kube-apiserver $(KUBE_ASSETS_LATEST)/kubectl:
	KUBE_VERSION=$(KUBE_VERSION_LATEST) hack/build-kube.sh $(KUBE_ASSETS_LATEST)

$(KUBE_ASSETS_LATEST)/etcd:
	ETCD_VERSION=$(ETCD_VERSION_LATEST) hack/build-etcd.sh $@

.PHONY: tools
tools: $(CONTROLLER_GEN) $(GOLANGCI_LINT) $(HELM) ## Install the pinned tools into ./bin.

$(CONTROLLER_GEN):
	GOBIN=$(BIN)/.tmp go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(BIN)/.tmp/controller-gen $@

$(GOLANGCI_LINT):
	GOBIN=$(BIN)/.tmp go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/.tmp/golangci-lint $@

$(HELM):
	GOBIN=$(BIN)/.tmp go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(BIN)/.tmp/helm $@

.PHONY: clean
clean: ## Remove built binaries (keeps the kube-apiserver cache in .cache/).
	rm -rf $(BIN)/herald-controller $(BIN)/herald-speaker $(BIN)/kubectl-herald

##@ Install
VERSION ?= v0.1.0
IMAGE   ?= ghcr.io/herald-lb/herald:$(VERSION)
GOARCH  ?= $(shell go env GOARCH)

.PHONY: manifests
manifests: generate ## Copy the generated CRDs and RBAC roles, the dashboard and the alerts into the Helm chart.
	rm -f manifests/helm/herald/files/crds/*.yaml
	cp manifests/crds/*.yaml manifests/helm/herald/files/crds/
	cp manifests/monitoring/herald-dashboard.json manifests/monitoring/prometheusrule.yaml manifests/helm/herald/files/
	for c in controller speaker metrics; do cp manifests/rbac/$$c/role.yaml manifests/helm/herald/files/rbac/$$c.yaml; done

# verify also checks that the chart's CRDs match the generated ones.
verify: manifests

.PHONY: helm-template
helm-template: $(HELM) ## Render the Helm chart (default values, with CRDs) into dist/herald-helm.yaml.
	mkdir -p dist
	$(HELM) template herald manifests/helm/herald --include-crds > dist/herald-helm.yaml

.PHONY: image
image: ## Build the OCI image tarball dist/herald-image.tar (IMAGE=...; no Docker engine needed).
	mkdir -p dist/image
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) go build -trimpath -ldflags='-s -w' -o dist/image/herald-controller ./controller
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) go build -trimpath -ldflags='-s -w' -o dist/image/herald-speaker ./speaker
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) go build -trimpath -ldflags='-s -w' -o dist/image/kubectl-herald ./cmd/kubectl-herald
	go run ./hack/mkimage --tag $(IMAGE) --arch $(GOARCH) \
	  --controller dist/image/herald-controller --speaker dist/image/herald-speaker \
	  --kubectl-herald dist/image/kubectl-herald --out dist/herald-image.tar

# Platforms of the kubectl-herald release archives.
PLUGIN_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64

.PHONY: release-plugin
release-plugin: ## Build the kubectl-herald release archives (dist/release/kubectl-herald_VERSION_OS_ARCH.tar.gz) and SHA256SUMS.
	rm -rf dist/release && mkdir -p dist/release
	for p in $(PLUGIN_PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; ext=""; [ "$$os" = windows ] && ext=.exe; \
	  d=dist/release/kubectl-herald_$(VERSION)_$${os}_$${arch}; mkdir -p $$d; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags='-s -w' -o $$d/kubectl-herald$$ext ./cmd/kubectl-herald; \
	  tar -C $$d -czf $$d.tar.gz --owner=0 --group=0 --mtime=@0 . && rm -rf $$d; \
	done
	cd dist/release && sha256sum *.tar.gz > SHA256SUMS

# The manifests tests render the Helm chart and regenerate the RBAC roles (and run hack/promql,
# a module of its own, with the go command).
test: $(HELM) $(CONTROLLER_GEN)

##@ Lab
.PHONY: demo
demo: deps kube-assets cluster-assets ## Bring up the cluster lab (real kubelets, containerd, kube-proxy; Herald from manifests/), show Herald at work, wait for Ctrl-C.
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/herald-cluster ./e2e/cmd/herald-cluster
	$(BIN)/herald-cluster

.PHONY: demo-cluster
demo-cluster: demo ## The same as demo.

.PHONY: demo-process
demo-process: deps kube-assets build ## Bring up the fast process lab (namespaces, FRR, API server, Herald as processes), show Herald at work, wait for Ctrl-C.
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/herald-lab ./e2e/cmd/herald-lab
	$(BIN)/herald-lab

.PHONY: e2e
e2e: deps kube-assets cluster-assets build $(HELM) ## Run the end-to-end tests in the process lab and the cluster lab (root; also part of `make test`).
	HERALD_REQUIRE_APISERVER=1 go test -count=1 -timeout 30m -v ./e2e/...

##@ Migration from MetalLB
METALLB_VERSION ?= v0.15.2
METALLB_BINS := $(BIN)/metallb-controller-$(METALLB_VERSION) $(BIN)/metallb-speaker-$(METALLB_VERSION)

.PHONY: metallb-assets
metallb-assets: $(METALLB_BINS) ## Build MetalLB's controller and speaker from the Go module proxy (the migration e2e test runs them).

$(METALLB_BINS):
	GOBIN=$(BIN)/.tmp CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath \
	  go.universe.tf/metallb/controller@$(METALLB_VERSION) go.universe.tf/metallb/speaker@$(METALLB_VERSION)
	mv $(BIN)/.tmp/controller $(BIN)/metallb-controller-$(METALLB_VERSION)
	mv $(BIN)/.tmp/speaker $(BIN)/metallb-speaker-$(METALLB_VERSION)

# The e2e tests include the migration from MetalLB (e2e/migration).
e2e: metallb-assets
