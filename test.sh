#!/usr/bin/env bash
# Runs every kup test: formatting, vet, unit tests with the race detector,
# then the end-to-end tests against real sandbox clusters.
#
# On a fresh machine it first builds the sandbox binaries (etcd, kwok and
# the Kubernetes control plane for each version the tests use) into the
# cache outside the repository (KUP_CACHE_DIR, default ~/.cache/kup),
# showing progress: about 4 minutes per Kubernetes version on 2 cores,
# seconds afterwards. System packages the tests need are installed with
# apt-get when missing (this needs root).
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin"

step() { printf '\n==> %s\n' "$*"; }

if ! command -v go >/dev/null; then
  echo "test.sh: Go 1.26 or newer is needed (https://go.dev/dl/)" >&2
  exit 1
fi

step "gofmt"
unformatted=$(gofmt -l cmd internal)
if [ -n "$unformatted" ]; then
  echo "not gofmt-ed:" >&2; echo "$unformatted" >&2; exit 1
fi

step "go vet"
go vet ./...

step "system packages (openssh-server and sudo, for the kubeadm-over-SSH tests)"
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/bin/sudo ] || missing+=(sudo)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing ${missing[*]}: run as root, or apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

step "unit tests (race detector; sandbox tests skipped with -short)"
go test -race -short -count=1 ./...

step "sandbox binaries (built once into the cache)"
go run ./cmd/kup sandbox prepare --version v1.35.4 --version v1.36.3 --version v1.37.2

step "all tests, end-to-end included"
go test -count=1 -timeout 80m ./...
