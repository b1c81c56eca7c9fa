#!/usr/bin/env bash
# A real Kubernetes API server (kube-apiserver + etcd, no kubelet, scheduler or controllers)
# on loopback, for octrix-k8s's end-to-end tests.
#
#   scripts/k8s-apiserver.sh build   build kube-apiserver from Debian's `kubernetes` source package
#                                    and unpack Debian's etcd, cached per source version
#   scripts/k8s-apiserver.sh start   build if needed, start etcd + kube-apiserver on free loopback
#                                    ports, wait for /readyz, write a kubeconfig and an env file
#   scripts/k8s-apiserver.sh stop    stop both by PID
#   scripts/k8s-apiserver.sh env     print the env file of the running server
#   scripts/k8s-apiserver.sh status  exit 0 when the server answers /readyz
#
# Nothing is installed system-wide: Debian packages are fetched with apt-get download/source using
# a private apt state directory whose sources are derived from this machine's Debian sources, and
# unpacked with dpkg -x into a private prefix. The build result (kube-apiserver, etcd) is cached in
#   ${XDG_CACHE_HOME:-$HOME/.cache}/octrix/k8s/<source-version>/bin
# so that a warm start costs only the start itself (~6 s).
#
# Environment:
#   OCTRIX_K8S_CACHE_DIR   cache directory (default: the one above)
#   OCTRIX_K8S_RUN_DIR     runtime directory: PKI, etcd data, logs, PIDs (default: target/k8s-test)
#   OCTRIX_K8S_ENV_FILE    env file written by start (default: target/k8s-test.env)
#   OCTRIX_K8S_KEEP_BUILD  1 keeps the 2 GB build tree after a successful build
#
# The env file sets KUBECONFIG and OCTRIX_K8S_APISERVER. The kubeconfig has three contexts, one
# per static-token user: `octrix-test` (current; user octrix-test-admin in system:masters),
# `octrix-test-unprivileged` and `octrix-test-deployed` (users of those names without any RBAC
# binding: the tests bind what they need).
set -euo pipefail

readonly SOURCE_PACKAGE=kubernetes
readonly SOURCE_VERSION=1.20.5+really1.20.2-1.1+deb12u1
readonly UPSTREAM_VERSION=v1.20.2
readonly BINARY_PACKAGES=(etcd-server golang-1.19-go golang-1.19-src
  golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev)

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR=${OCTRIX_K8S_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/octrix/k8s/$SOURCE_VERSION}
RUN_DIR=${OCTRIX_K8S_RUN_DIR:-$REPO_ROOT/target/k8s-test}
ENV_FILE=${OCTRIX_K8S_ENV_FILE:-$REPO_ROOT/target/k8s-test.env}
BIN_DIR=$CACHE_DIR/bin
STAMP=$CACHE_DIR/complete

log() { printf '[k8s-apiserver] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------

# Writes an apt sources list with deb and deb-src entries for the Debian archives this machine
# already uses (read from /etc/apt), so the script carries no mirror address of its own.
write_private_sources() {
  local out=$1 f
  : >"$out"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822 stanzas signed by the Debian archive keyring; add deb-src to their Types.
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
         /debian-archive-keyring/ && !/Enabled: *no/ {
           sub(/Types: *deb( deb-src)?/, "Types: deb deb-src"); print }' "$f" >>"${out%.list}.sources"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" && $0 ~ /debian/ { print; sub(/^deb /, "deb-src "); print }' "$f" >>"$out"
  done
  if [ ! -s "$out" ] && [ ! -s "${out%.list}.sources" ]; then
    die "no Debian apt source found in /etc/apt to fetch packages from"
  fi
}

build() {
  if [ -f "$STAMP" ] && [ -x "$BIN_DIR/kube-apiserver" ] && [ -x "$BIN_DIR/etcd" ]; then
    log "cached: $BIN_DIR ($(cat "$STAMP"))"
    return 0
  fi
  mkdir -p "$CACHE_DIR"
  exec 9>"$CACHE_DIR.lock"
  log "waiting for the build lock $CACHE_DIR.lock"
  flock 9
  if [ -f "$STAMP" ]; then
    log "built by another process meanwhile"
    return 0
  fi
  local started=$SECONDS
  local work=$CACHE_DIR/build
  rm -rf "$work"
  mkdir -p "$work"/{debs,root,src,apt/lists/partial,apt/cache/archives/partial}

  # dpkg-source unpacks the source package and applies Debian's patches.
  ensure_commands dpkg-source:dpkg-dev patch:patch xz:xz-utils

  local list=$work/apt/sources.list
  write_private_sources "$list"
  local sources_dir=$work/apt/sources.list.d
  mkdir -p "$sources_dir"
  [ -s "$work/apt/sources.sources" ] && mv "$work/apt/sources.sources" "$sources_dir/debian.sources"
  local apto=(-o "Dir::Etc::SourceList=$list" -o "Dir::Etc::SourceParts=$sources_dir"
    -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
    -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")
  log "apt-get update (private lists in $work/apt)"
  apt-get "${apto[@]}" update >&2

  log "downloading ${BINARY_PACKAGES[*]}"
  (cd "$work/debs" && apt-get "${apto[@]}" download "${BINARY_PACKAGES[@]}" >&2)
  local deb
  for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$work/root"; done

  log "fetching source $SOURCE_PACKAGE=$SOURCE_VERSION"
  (cd "$work/src" && apt-get "${apto[@]}" source "$SOURCE_PACKAGE=$SOURCE_VERSION" >&2)
  local src
  src=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name "$SOURCE_PACKAGE-*" | head -1)
  [ -n "$src" ] && [ -d "$src/cmd/kube-apiserver" ] || die "source tree not found under $work/src"

  # Go >= 1.18 crashes the vendored reflect2 1.0.1 ("fatal error: fault" in mapiternext, the
  # first time a custom resource is created): use Debian's reflect2 1.0.2 and json-iterator 1.1.12.
  local gocode=$work/root/usr/share/gocode/src/github.com
  rm -rf "$src/vendor/github.com/modern-go/reflect2" "$src/vendor/github.com/json-iterator/go"
  cp -r "$gocode/modern-go/reflect2" "$src/vendor/github.com/modern-go/"
  cp -r "$gocode/json-iterator/go" "$src/vendor/github.com/json-iterator/"
  find "$src/vendor/github.com/modern-go/reflect2" "$src/vendor/github.com/json-iterator/go" \
    -name '*_test.go' -delete

  # Backport (upstream 1.22+): accept events about cluster-scoped objects (Nodes) recorded in the
  # `default` namespace, as kube-rs's event Recorder and newer clients do.
  local events=$src/pkg/apis/core/validation/events.go
  sed -i 's/if len(event.InvolvedObject.Namespace) == 0 \&\& event.Namespace != metav1.NamespaceSystem {/if len(event.InvolvedObject.Namespace) == 0 \&\& event.Namespace != metav1.NamespaceSystem \&\& event.Namespace != metav1.NamespaceDefault {/' "$events"
  grep -q 'event.Namespace != metav1.NamespaceDefault' "$events" || die "events.go backport did not apply"

  export GOROOT=$work/root/usr/lib/go-1.19
  export PATH=$GOROOT/bin:$PATH GOPATH=$work/gopath GOCACHE=$work/gocache
  export GO111MODULE=off CGO_ENABLED=0 GOPROXY=off GOFLAGS=
  mkdir -p "$GOPATH/src/k8s.io"
  ln -sfn "$src" "$GOPATH/src/k8s.io/kubernetes"
  cd "$GOPATH/src/k8s.io/kubernetes"
  log "go $(go version | awk '{print $3}'): building openapi-gen"
  nice -n 10 go build -o "$work/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  local dirs
  dirs=$(find -L pkg vendor -name '*.go' -not -path 'vendor/k8s.io/code-generator/*' \
    -not -path 'vendor/k8s.io/sample-apiserver/*' -print0 |
    { xargs -0 grep -l '+k8s:openapi-gen=' || true; } | xargs -n1 dirname | LC_ALL=C sort -u |
    sed 's#^#k8s.io/kubernetes/#' | paste -sd,)
  log "generating pkg/generated/openapi"
  nice -n 10 "$work/openapi-gen" -i "$dirs" -p k8s.io/kubernetes/pkg/generated/openapi \
    -O zz_generated.openapi -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
    -r "$work/openapi_violations.report"
  local v=k8s.io/kubernetes/vendor/k8s.io
  local ldflags="-s -w -X $v/component-base/version.gitVersion=$UPSTREAM_VERSION"
  ldflags+=" -X $v/component-base/version.gitMajor=1 -X $v/component-base/version.gitMinor=20"
  ldflags+=" -X $v/client-go/pkg/version.gitVersion=$UPSTREAM_VERSION"
  ldflags+=" -X $v/component-base/version.gitTreeState=clean"
  log "building kube-apiserver (several minutes)"
  mkdir -p "$BIN_DIR"
  nice -n 10 go build -ldflags "$ldflags" -o "$BIN_DIR/kube-apiserver.tmp" ./cmd/kube-apiserver
  mv "$BIN_DIR/kube-apiserver.tmp" "$BIN_DIR/kube-apiserver"
  cp "$work/root/usr/bin/etcd" "$BIN_DIR/etcd"
  cd "$REPO_ROOT"

  local apiserver_version etcd_version
  apiserver_version=$("$BIN_DIR/kube-apiserver" --version)
  etcd_version=$("$BIN_DIR/etcd" --version | head -1)
  printf '%s; %s; built in %ss\n' "$apiserver_version" "$etcd_version" $((SECONDS - started)) >"$STAMP"
  if [ "${OCTRIX_K8S_KEEP_BUILD:-0}" != 1 ]; then rm -rf "$work"; fi
  log "built: $(cat "$STAMP")"
}

# ---------------------------------------------------------------------------------------------
# start / stop
# ---------------------------------------------------------------------------------------------

port_in_use() {
  if command -v ss >/dev/null; then
    ss -Htln "sport = :$1" | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# Installs the Debian packages providing missing commands (a minimal Debian 12 lacks some).
ensure_commands() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]} (install them or run as root)"
  log "installing ${missing[*]}"
  apt-get update >&2
  apt-get install -y --no-install-recommends "${missing[@]}" >&2
}

# Prints a free TCP port on loopback, different from the ones given as arguments.
free_port() {
  local p tries=0
  while :; do
    p=$((20000 + RANDOM % 40000))
    if ! port_in_use "$p" && [[ " $* " != *" $p "* ]]; then echo "$p"; return 0; fi
    tries=$((tries + 1))
    [ "$tries" -lt 200 ] || die "no free port found"
  done
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Shows the end of a log, stops whatever started, and fails.
fail_start() {
  tail -30 "$RUN_DIR/$1" >&2 || true
  stop quiet
  die "$2"
}

make_pki() {
  local pki=$1
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -keyout ca.key -out ca.crt \
      -subj "/CN=octrix-test-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1\nextendedKeyUsage=serverAuth\n' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    local admin unprivileged deployed
    admin=$(openssl rand -hex 24)
    unprivileged=$(openssl rand -hex 24)
    deployed=$(openssl rand -hex 24)
    printf '%s,octrix-test-admin,octrix-test-admin,"system:masters"\n%s,octrix-test-unprivileged,octrix-test-unprivileged\n%s,octrix-test-deployed,octrix-test-deployed\n' \
      "$admin" "$unprivileged" "$deployed" >tokens.csv
    chmod 600 tokens.csv ca.key apiserver.key sa.key
  )
}

token_of() { awk -F, -v u="$2" '$2 == u { print $1 }' "$1/tokens.csv"; }

write_kubeconfig() {
  local pki=$1 server=$2 out=$3 ca
  ca=$(base64 -w0 <"$pki/ca.crt")
  cat >"$out" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: octrix-test
  cluster:
    server: $server
    certificate-authority-data: $ca
users:
- name: octrix-test-admin
  user:
    token: $(token_of "$pki" octrix-test-admin)
- name: octrix-test-unprivileged
  user:
    token: $(token_of "$pki" octrix-test-unprivileged)
- name: octrix-test-deployed
  user:
    token: $(token_of "$pki" octrix-test-deployed)
contexts:
- name: octrix-test
  context:
    cluster: octrix-test
    user: octrix-test-admin
    namespace: default
- name: octrix-test-unprivileged
  context:
    cluster: octrix-test
    user: octrix-test-unprivileged
    namespace: default
- name: octrix-test-deployed
  context:
    cluster: octrix-test
    user: octrix-test-deployed
    namespace: default
current-context: octrix-test
EOF
  chmod 600 "$out"
}

readyz() {
  local pki=$RUN_DIR/pki server
  server=$(cat "$RUN_DIR/server" 2>/dev/null) || return 1
  curl -fsS --max-time 3 --cacert "$pki/ca.crt" \
    -H "Authorization: Bearer $(token_of "$pki" octrix-test-admin)" "$server/readyz" 2>/dev/null
}

start() {
  if pid_alive "$RUN_DIR/apiserver.pid" && pid_alive "$RUN_DIR/etcd.pid" && [ "$(readyz)" = ok ]; then
    log "already running: $(cat "$RUN_DIR/server")"
    cat "$ENV_FILE"
    return 0
  fi
  stop quiet
  build
  ensure_commands openssl:openssl curl:curl base64:coreutils setsid:util-linux
  local started=$SECONDS
  rm -rf "$RUN_DIR"
  mkdir -p "$RUN_DIR" "$(dirname "$ENV_FILE")"
  make_pki "$RUN_DIR/pki"
  local pki=$RUN_DIR/pki
  local etcd_client etcd_peer api
  etcd_client=$(free_port)
  etcd_peer=$(free_port "$etcd_client")
  api=$(free_port "$etcd_client" "$etcd_peer")
  local server=https://127.0.0.1:$api
  echo "$server" >"$RUN_DIR/server"

  setsid "$BIN_DIR/etcd" --name octrix-test --data-dir "$RUN_DIR/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_client" \
    --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "octrix-test=http://127.0.0.1:$etcd_peer" \
    --unsafe-no-fsync >"$RUN_DIR/etcd.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/etcd.pid"
  local i
  for i in $(seq 1 100); do
    curl -fsS --max-time 1 "http://127.0.0.1:$etcd_client/health" 2>/dev/null | grep -q '"health":"true"' && break
    pid_alive "$RUN_DIR/etcd.pid" || fail_start etcd.log "etcd exited"
    [ "$i" -lt 100 ] || fail_start etcd.log "etcd not healthy after 20 s"
    sleep 0.2
  done
  log "etcd healthy on 127.0.0.1:$etcd_client after $((SECONDS - started)) s"

  setsid "$BIN_DIR/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_client" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --token-auth-file="$pki/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --disable-admission-plugins=ServiceAccount \
    --allow-privileged=true \
    --cert-dir="$RUN_DIR/apiserver-certs" \
    --v=1 >"$RUN_DIR/apiserver.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/apiserver.pid"
  for i in $(seq 1 300); do
    [ "$(readyz)" = ok ] && break
    pid_alive "$RUN_DIR/apiserver.pid" || fail_start apiserver.log "kube-apiserver exited"
    [ "$i" -lt 300 ] || fail_start apiserver.log "kube-apiserver not ready after 60 s"
    sleep 0.2
  done
  write_kubeconfig "$pki" "$server" "$RUN_DIR/kubeconfig"
  cat >"$ENV_FILE" <<EOF
KUBECONFIG=$RUN_DIR/kubeconfig
OCTRIX_K8S_APISERVER=$server
EOF
  log "kube-apiserver ready at $server after $((SECONDS - started)) s; env file $ENV_FILE"
  cat "$ENV_FILE"
}

stop_pid() {
  local file=$1 name=$2 pid i
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$file"
}

stop() {
  stop_pid "$RUN_DIR/apiserver.pid" kube-apiserver
  stop_pid "$RUN_DIR/etcd.pid" etcd
  if [ "${1:-}" != quiet ]; then rm -f "$ENV_FILE"; fi
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  env) [ -f "$ENV_FILE" ] || die "not started: $ENV_FILE missing"; cat "$ENV_FILE" ;;
  status) [ "$(readyz)" = ok ] || die "not running"; log "ready: $(cat "$RUN_DIR/server")" ;;
  *) echo "usage: $0 build|start|stop|env|status" >&2; exit 2 ;;
esac
