# Shared by the stand-in host tools (sourced, not run). Each simulated
# host has /etc/kup-standin.env (in its own /etc layer) saying which node
# it is and where its state lives; the tools record every call there and
# change the sandbox through `kup sandbox-hook` the way the real tools
# change a real cluster.
. /etc/kup-standin.env
S="$STANDIN_DIR"
# Arguments such as kubeadm=1.37.2-* must never glob.
set -f

log() { printf 'uid=%s %s\n' "$(id -u)" "$*" >> "$S/calls.log"; }
state() { cat "$S/state/$1" 2>/dev/null; }
setstate() { printf '%s\n' "$2" > "$S/state/$1"; }
knob() { cat "$S/knobs/$1" 2>/dev/null; }

# needroot fails the way the real tool does without root.
needroot() {
	[ "$(id -u)" = 0 ] && return 0
	echo "$1" >&2
	exit "${2:-1}"
}

# hook changes the sandbox: hook control-plane|upgrade-node|kubelet VERSION
hook() {
	KUP_STATE_DIR="$KUP_STATE_DIR" KUP_CACHE_DIR="$KUP_CACHE_DIR" HOME="$KUP_HOME" \
		"$KUP_BIN" sandbox-hook "$1" --name "$STANDIN_SANDBOX" --node "$STANDIN_NODE" --version "$2" >> "$S/hook.log" 2>&1
}

# repo_minor prints the pkgs.k8s.io minor a repository file points at.
repo_minor() { sed -n -E 's#.*pkgs\.k8s\.io/core:/stable:/(v[0-9]+\.[0-9]+)/.*#\1#p' "$1" | head -n 1; }

# minor_of 1.37.2 → v1.37
minor_of() { echo "v${1%.*}"; }

# failing PACKAGE: the test asked this host's install of PACKAGE to fail.
failing() { knob fail-install | tr ' ' '\n' | grep -qx "$1"; }
