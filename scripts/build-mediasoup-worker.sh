#!/usr/bin/env bash
# Provides node_modules/mediasoup/worker/out/Release/mediasoup-worker, the
# path mediasoup's JS spawns by default, without needing internet access.
#
# Why this exists: mediasoup's npm postinstall either downloads a prebuilt
# worker from GitHub or builds one after pip-installing invoke/meson/ninja and
# letting meson download every dependency. Offline, all three fail. This
# script instead builds the worker from the C++ sources npm already installed,
# against Debian 12 packages, and caches the result.
#
# What it does, in order:
#   1. (auto mode) Keep a working worker binary that is already installed and
#      was not put there by this script (e.g. mediasoup's own prebuilt).
#   2. (auto mode) Otherwise try the official prebuilt download once, with a
#      short timeout; offline this fails within a second.
#   3. Otherwise install the binary built from source: from the cache when one
#      matches, else build it (about 11 CPU-minutes, so 6+ minutes on 2 cores)
#      and cache it.
#
# The source build happens on a private copy of the worker sources, in which:
#   - the meson subprojects (wraps that would download libuv, OpenSSL, ...)
#     are replaced by the stand-ins in scripts/mediasoup-compat/subprojects,
#     which hand over Debian's libraries found through pkg-config, plus two
#     compatibility layers: mediasoup's libsrtp 3 API on top of Debian's
#     libsrtp 2, and <ankerl/unordered_dense.h> on top of std containers;
#   - src/RTC/DtlsTransport.cpp gets a one-line fix without which the worker
#     crashes on the first DTLS handshake when linked to Debian's OpenSSL
#     (see patch_dtls_bio_callback below).
# node_modules is only written to when installing the finished binary.
#
# Environment:
#   REENACT_MEDIASOUP_BUILD=auto|source  "source" skips steps 1-2 (default auto)
#   REENACT_CACHE_DIR    cache root (default ${XDG_CACHE_HOME:-~/.cache}/reenact)
#   REENACT_BUILD_JOBS   parallel compile jobs (default: number of CPUs)
#   REENACT_KEEP_BUILD=1 keep the build tree after a successful build
#   REENACT_PREBUILT_TIMEOUT_S  limit for the prebuilt download (default 60)
#   REENACT_DEBIAN_MIRROR  Debian mirror for fetching meson from backports
#                          (default: the one in the system's apt sources)
#
# Written for Debian 12 (bookworm); other releases are untested. The apt
# packages are listed in REQUIRED_PACKAGES below and are installed
# automatically when run as root (otherwise the exact command is printed).

set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMPAT_DIR="$REPO_ROOT/scripts/mediasoup-compat"
MEDIASOUP_DIR="$REPO_ROOT/node_modules/mediasoup"
RELEASE_DIR="$MEDIASOUP_DIR/worker/out/Release"
WORKER_BIN="$RELEASE_DIR/mediasoup-worker"
# Written next to a binary this script installed from a source build, holding
# its cache key: tells our own (possibly outdated) builds apart from a
# prebuilt that must be left alone.
BUILD_MARKER="$RELEASE_DIR/.reenact-source-build"

CACHE_ROOT="${REENACT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reenact}"
MODE="${REENACT_MEDIASOUP_BUILD:-auto}"
JOBS="${REENACT_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# Compiler and build tools, the Debian libraries the worker links against,
# and Debian's flatc (which must match the flatbuffers headers).
REQUIRED_PACKAGES=(
	g++ pkg-config ninja-build python3
	libuv1-dev libssl-dev libsrtp2-dev libabsl-dev
	libflatbuffers-dev flatbuffers-compiler
)
# Oldest meson that mediasoup's meson.build accepts. Debian 12 has 1.0.1, so
# unless a newer one is on PATH it is fetched from bookworm-backports.
MESON_MIN_VERSION=1.1.0

log() { printf '[mediasoup-worker] %s\n' "$*"; }
die() {
	printf '[mediasoup-worker] ERROR: %s\n' "$*" >&2
	exit 1
}

# mediasoup-worker exits with code 41 when started without MEDIASOUP_VERSION
# in its environment; mediasoup's own installer uses the same probe. Any other
# result (missing shared library, wrong architecture, crash) means unusable.
worker_runs() {
	local rc=0
	[ -x "$1" ] || return 1
	env -i "$1" </dev/null >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 41 ]
}

# version_ge A B: true when version A >= version B.
version_ge() {
	printf '%s\n%s\n' "$2" "$1" | sort -V -C
}

install_worker() {
	local src=$1 key=$2
	mkdir -p "$RELEASE_DIR"
	# Copy then rename, so a running server never sees a half-written file.
	cp "$src" "$WORKER_BIN.tmp.$$"
	chmod 0755 "$WORKER_BIN.tmp.$$"
	mv -f "$WORKER_BIN.tmp.$$" "$WORKER_BIN"
	if [ -n "$key" ]; then
		printf '%s\n' "$key" >"$BUILD_MARKER"
	else
		rm -f "$BUILD_MARKER"
	fi
}

try_prebuilt() {
	local tmp rc=0
	tmp=$(mktemp -d)
	log "trying mediasoup's prebuilt worker download..."
	node "$COMPAT_DIR/fetch-prebuilt.mjs" "$MEDIASOUP_DIR" "$tmp/worker.tgz" || rc=$?
	if [ "$rc" -eq 0 ] && tar -xzf "$tmp/worker.tgz" -C "$tmp" 2>/dev/null &&
		worker_runs "$tmp/mediasoup-worker"; then
		install_worker "$tmp/mediasoup-worker" ""
		rm -rf "$tmp"
		log "installed the prebuilt worker (it bundles its own OpenSSL; no patch needed)"
		return 0
	fi
	[ "$rc" -eq 0 ] && log "the downloaded prebuilt does not run on this host"
	rm -rf "$tmp"
	return 1
}

ensure_packages() {
	if ! command -v dpkg-query >/dev/null; then
		log "not a Debian system: skipping the apt package check; needed: ${REQUIRED_PACKAGES[*]}"
		return 0
	fi

	local pkg missing=()
	for pkg in "${REQUIRED_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$pkg")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0

	local cmd="apt-get install -y --no-install-recommends ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		die "missing apt packages: ${missing[*]}
  install them with:  sudo $cmd
  then rerun:         bash scripts/build-mediasoup-worker.sh"
	fi

	log "installing missing apt packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# A fresh container often has no package lists yet: update and retry once.
	$cmd || { apt-get update && $cmd; } ||
		die "could not install: ${missing[*]} (run '$cmd' and check its errors)"
}

# The Debian mirror the system already uses, so that fetching meson goes
# through the same (possibly proxied or internal) host.
detect_debian_mirror() {
	local uri
	uri=$(
		{
			sed -nE 's/^[[:space:]]*URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
			sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' \
				/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
		} | grep -E '/debian/?$' | head -n1
	) || true
	printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# Sets MESON to a meson >= MESON_MIN_VERSION: one on PATH, else the
# bookworm-backports package unpacked privately under the cache directory.
# The system's apt configuration is never modified: apt runs with a private
# sources list and private package lists for this one download.
ensure_meson() {
	if command -v meson >/dev/null && version_ge "$(meson --version 2>/dev/null || echo 0)" "$MESON_MIN_VERSION"; then
		MESON=$(command -v meson)
		return 0
	fi

	local dir="$CACHE_ROOT/meson"
	MESON="$dir/meson"
	if [ -x "$MESON" ] && version_ge "$("$MESON" --version 2>/dev/null || echo 0)" "$MESON_MIN_VERSION"; then
		return 0
	fi

	local codename mirror python apt_dir deb version
	codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || die "cannot tell the Debian release; install meson >= $MESON_MIN_VERSION on PATH"
	mirror="${REENACT_DEBIAN_MIRROR:-$(detect_debian_mirror)}"
	python=/usr/bin/python3
	[ -x "$python" ] || python=$(command -v python3) || die "python3 not found"

	log "meson >= $MESON_MIN_VERSION not found; fetching it from $codename-backports ($mirror)"
	apt_dir="$dir/apt"
	rm -rf "$apt_dir"
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"

	local signed_by=""
	[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] &&
		signed_by="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
	printf 'deb %s%s %s-backports main\n' "$signed_by" "$mirror" "$codename" >"$apt_dir/sources.list"

	local apt_opts=(
		-q
		-o "Dir::Etc::sourcelist=$apt_dir/sources.list"
		-o "Dir::Etc::sourceparts=-"
		-o "Dir::State::Lists=$apt_dir/lists"
		-o "Dir::Cache=$apt_dir/cache"
	)
	# As root, apt drops privileges to _apt for downloads, which cannot write
	# into a root-owned cache directory; download as root instead.
	[ "$(id -u)" -eq 0 ] && apt_opts+=(-o "APT::Sandbox::User=root")

	apt-get "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1 ||
		die "apt-get update for $codename-backports failed (see $apt_dir/update.log)"
	(cd "$apt_dir" && apt-get "${apt_opts[@]}" download "meson/$codename-backports") >"$apt_dir/download.log" 2>&1 ||
		die "downloading meson from $codename-backports failed (see $apt_dir/download.log)"

	deb=$(ls "$apt_dir"/meson_*.deb)
	version=$(dpkg-deb -f "$deb" Version)
	rm -rf "$dir/root"
	dpkg-deb -x "$deb" "$dir/root"

	# meson re-executes itself (e.g. `meson compile` running ninja, which may
	# rerun meson), so the module path is passed through the environment.
	cat >"$MESON.tmp" <<-EOF
		#!/bin/sh
		# meson $version from $codename-backports, unpacked by build-mediasoup-worker.sh
		PYTHONPATH="$dir/root/usr/lib/python3/dist-packages\${PYTHONPATH:+:\$PYTHONPATH}"
		export PYTHONPATH
		exec "$python" "$dir/root/usr/bin/meson" "\$@"
	EOF
	chmod 0755 "$MESON.tmp"
	mv -f "$MESON.tmp" "$MESON"
	rm -rf "$apt_dir"

	version_ge "$("$MESON" --version)" "$MESON_MIN_VERSION" ||
		die "the downloaded meson does not run (try: $MESON --version)"
	log "using meson $("$MESON" --version) at $MESON"
}

# Identifies a build: everything that changes the resulting binary. A change
# in any of these gives a new key, hence a rebuild; an unchanged key reuses
# the cached binary.
compute_key() {
	local inputs
	inputs=$(
		printf 'mediasoup %s\narch %s\n' "$MS_VERSION" "$(uname -m)"
		(cd "$REPO_ROOT" && find scripts/build-mediasoup-worker.sh scripts/mediasoup-compat/subprojects \
			-type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		for module in libuv openssl libsrtp2 flatbuffers absl_base; do
			printf '%s %s\n' "$module" "$(pkg-config --modversion "$module")"
		done
		flatc --version
		"${CXX:-c++}" --version | head -n1
	) || die "could not compute the build key (are pkg-config, flatc and g++ installed?)"
	printf '%s-%s\n' "$MS_VERSION" "$(printf '%s' "$inputs" | sha256sum | cut -c1-16)"
}

# mediasoup's BIO callback on the DTLS write BIO returns its own value (1)
# for every OpenSSL BIO operation except the one it means to pass through,
# because it compares the operation with `== BIO_CB_RETURN` while OpenSSL
# always reports BIO_CB_RETURN combined with the operation bits. So every
# BIO_ctrl() query on that BIO answers 1, including "is kernel TLS sending
# enabled?". Debian's libssl is built with kTLS support, believes kTLS is on,
# never allocates its write buffer, and the worker crashes (SIGSEGV) on the
# first DTLS handshake. Upstream prebuilts bundle an OpenSSL built without
# kTLS, which is why they are unaffected. Testing the bit fixes it.
patch_dtls_bio_callback() {
	local file="$1/src/RTC/DtlsTransport.cpp"
	local count
	count=$(grep -cF '(operationType == BIO_CB_RETURN)' "$file" || true)
	[ "$count" = 1 ] ||
		die "DTLS fix: expected exactly one '(operationType == BIO_CB_RETURN)' in $file, found $count.
  mediasoup's code changed: review onSslBioOut() and update patch_dtls_bio_callback in $0."
	sed -i 's/(operationType == BIO_CB_RETURN)/((operationType \& BIO_CB_RETURN) != 0)/' "$file"
	grep -qF '((operationType & BIO_CB_RETURN) != 0)' "$file" || die "DTLS fix: sed did not apply"
}

# Turns ninja's per-file lines into a progress line every 50 steps. The full
# output is kept in build.log, whose error lines are shown if the build fails.
show_progress() {
	awk '/^\[[0-9]+\/[0-9]+\]/ {
		gsub(/[][]/, "", $1)
		split($1, n, "/")
		if (n[1] % 50 == 0 || n[1] == n[2]) { printf "[mediasoup-worker]   compiled %s/%s\n", n[1], n[2]; fflush() }
	}'
}

build_from_source() {
	local key=$1
	local build_root="$CACHE_ROOT/mediasoup-build/$key"
	local src="$build_root/worker" out="$build_root/build"

	ensure_meson

	# Debian's flatc generates the schema headers; flatc-generated code only
	# compiles against the flatbuffers headers of the very same release.
	local flatc_version fb_version
	flatc_version=$(flatc --version | awk '{ print $NF }')
	fb_version=$(pkg-config --modversion flatbuffers)
	[ "$flatc_version" = "$fb_version" ] ||
		die "flatc $flatc_version (at $(command -v flatc)) differs from the flatbuffers headers $fb_version; use Debian's flatbuffers-compiler"

	# A tree left by an interrupted build with the same key is resumed (ninja
	# only redoes what is missing); anything less than a configured tree is
	# rebuilt from scratch.
	if [ ! -f "$build_root/.configured" ]; then
		log "staging a private copy of the worker sources in $build_root"
		# Trees of other keys are leftovers of failed or outdated builds.
		rm -rf "$CACHE_ROOT/mediasoup-build"
		mkdir -p "$build_root"
		cp -a "$MEDIASOUP_DIR/worker" "$src"
		# Leftovers of earlier install attempts are not sources.
		rm -rf "$src/out" "$src/prebuild" "$src/pip_invoke"
		# The stand-ins replace all upstream wraps. The catch2 (tests) and
		# wingetopt (Windows) wraps go too: neither is used by this build.
		rm -rf "$src/subprojects"
		cp -a "$COMPAT_DIR/subprojects" "$src/subprojects"
		patch_dtls_bio_callback "$src"

		log "configuring (meson, release build, no downloads)"
		# Pin Debian's flatc even if another one comes first on PATH.
		printf "[binaries]\nflatc = '%s'\n" "$(command -v flatc)" >"$build_root/native.ini"
		"$MESON" setup "$out" "$src" \
			--native-file "$build_root/native.ini" \
			--buildtype=release -Db_ndebug=true \
			--wrap-mode=nodownload \
			>"$build_root/configure.log" 2>&1 || {
			tail -n 40 "$build_root/configure.log" >&2
			die "meson setup failed (full log: $build_root/configure.log)"
		}
		touch "$build_root/.configured"
	else
		log "resuming the build in $build_root"
	fi

	# Only the worker executable: the test, fuzzer and library targets are not
	# built by default and need nothing of theirs (catch2, libFuzzer).
	log "compiling mediasoup-worker with $JOBS jobs (takes minutes; log: $build_root/build.log)"
	if ! "$MESON" compile -C "$out" -j "$JOBS" mediasoup-worker 2>&1 |
		tee "$build_root/build.log" | show_progress; then
		# Error lines only, cut short: failed link commands run to many KB.
		grep -E 'error|undefined reference|FAILED' "$build_root/build.log" | cut -c1-300 | head -n 40 >&2 ||
			tail -n 40 "$build_root/build.log" >&2
		die "compilation failed (full log: $build_root/build.log)"
	fi

	worker_runs "$out/mediasoup-worker" ||
		die "the freshly built $out/mediasoup-worker does not start (try running it; ldd may show a missing library)"

	# Publish to the cache atomically: a cache entry is either complete or absent.
	local cache_dir="$CACHE_ROOT/mediasoup-worker/$key"
	mkdir -p "$cache_dir"
	cp "$out/mediasoup-worker" "$cache_dir/mediasoup-worker.tmp.$$"
	mv -f "$cache_dir/mediasoup-worker.tmp.$$" "$cache_dir/mediasoup-worker"

	if [ "${REENACT_KEEP_BUILD:-0}" = 1 ]; then
		log "build tree kept in $build_root"
	else
		rm -rf "$build_root"
	fi
}

main() {
	[ -f "$MEDIASOUP_DIR/package.json" ] ||
		die "$MEDIASOUP_DIR not found: run 'npm install' first"
	[ -d "$MEDIASOUP_DIR/worker/src" ] ||
		die "$MEDIASOUP_DIR/worker has no C++ sources; reinstall mediasoup (npm install)"
	case "$MODE" in
	auto | source) ;;
	*) die "REENACT_MEDIASOUP_BUILD must be 'auto' or 'source' (got '$MODE')" ;;
	esac

	MS_VERSION=$(node -p "require(process.argv[1]).version" "$MEDIASOUP_DIR/package.json")
	log "mediasoup $MS_VERSION, mode $MODE"

	if [ -n "${MEDIASOUP_WORKER_BIN:-}" ]; then
		log "note: MEDIASOUP_WORKER_BIN=$MEDIASOUP_WORKER_BIN is set in this shell; at runtime mediasoup"
		log "      spawns that path instead of the one installed here (unset it to use this one)"
	fi

	if [ "$MODE" = auto ]; then
		if [ ! -f "$BUILD_MARKER" ] && worker_runs "$WORKER_BIN"; then
			log "keeping the working worker already installed at $WORKER_BIN"
			log "(not built by this script; REENACT_MEDIASOUP_BUILD=source replaces it)"
			return 0
		fi
		# A binary of ours means the prebuilt was already unavailable here.
		if [ ! -f "$BUILD_MARKER" ] && try_prebuilt; then
			return 0
		fi
	fi

	ensure_packages
	local key
	key=$(compute_key)

	if [ "$(cat "$BUILD_MARKER" 2>/dev/null || true)" = "$key" ] && worker_runs "$WORKER_BIN"; then
		log "source build $key is already installed at $WORKER_BIN"
		return 0
	fi

	# Serialise concurrent runs (e.g. two checkouts sharing the cache) so they
	# don't build into the same tree at once.
	mkdir -p "$CACHE_ROOT"
	if command -v flock >/dev/null; then
		exec 9>"$CACHE_ROOT/.mediasoup-build.lock"
		flock -n 9 || {
			log "waiting for another run of this script to finish..."
			flock 9
		}
	fi

	local cached="$CACHE_ROOT/mediasoup-worker/$key/mediasoup-worker"
	if worker_runs "$cached"; then
		log "using the cached source build $key"
	else
		log "no cached build for key $key: building from source"
		build_from_source "$key"
	fi

	install_worker "$cached" "$key"
	log "installed $WORKER_BIN (source build $key)"
}

SECONDS=0
main "$@"
log "done in ${SECONDS}s"
