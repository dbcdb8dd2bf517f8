#!/usr/bin/env bash
# One-shot, idempotent set-up on Debian 12 with Node 20, offline except for
# the npm registry and Debian's apt repositories:
#   1. Debian packages (ffmpeg, and what the mediasoup worker builds against; Mesa's Vulkan
#      driver from bookworm-backports for the WebGPU provider on the CPU)
#   2. npm dependencies, with the install steps that would download from the
#      internet (mediasoup prebuilt worker, onnxruntime CUDA libraries) skipped
#   3. the mediasoup worker (prebuilt when reachable, else built from the
#      npm-shipped sources and cached)
#   4. the ONNX models, converted from the MediaPipe npm packages
#   5. the browser client bundle
#   6. a real DTLS handshake against the worker (wrtc peer), so a broken
#      worker fails here and not on the first user
# A second run takes seconds: every step checks before it works.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }
t_start=$(date +%s)

# ffmpeg: video I/O for tools and tests; chromium: browser tests (playwright-core drives it);
# openssl: the HTTPS test makes a self-signed certificate.
# libdlib-dev libdlib-data g++: independent grader for the fidelity evaluation (dlib's 68-point
# face landmarks, scripts/build-dlib-grader.sh), so the renderer is not graded only by our tracker.
# redis-server: the cluster tests start their own (cluster mode, docs/deploy.md); the
# single-machine server never needs it.
APT_PACKAGES=(ffmpeg chromium openssl libdlib-dev libdlib-data g++ redis-server)

step "Debian packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
else
  echo "all present"
fi

# mesa-vulkan-drivers 25.x from bookworm-backports: llvmpipe, a Vulkan device on the CPU, so
# onnxruntime-node's bundled WebGPU provider (Dawn over Vulkan) runs here and the GPU code path is
# tested without a GPU (test/gpu.test.ts). bookworm's own Mesa 22 is too old for Dawn.
step "Vulkan on the CPU (mesa-vulkan-drivers from bookworm-backports)"
mesa_version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
if [[ "$mesa_version" == *bpo12* ]] || { [ -n "$mesa_version" ] && dpkg --compare-versions "$mesa_version" ge 24; }; then
  echo "mesa-vulkan-drivers $mesa_version present"
elif [ "$(id -u)" = 0 ]; then
  backports=/etc/apt/sources.list.d/bookworm-backports.sources
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$backports"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers
else
  echo "mesa-vulkan-drivers from bookworm-backports is missing (the WebGPU provider needs a Vulkan device)" >&2
  echo "run as root: add bookworm-backports to apt's sources, then apt-get install -t bookworm-backports mesa-vulkan-drivers" >&2
  exit 1
fi

step "npm dependencies"
# The lockfile hash decides whether node_modules is current.
lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ -f node_modules/.reenact-lock-hash ] && [ "$(cat node_modules/.reenact-lock-hash)" = "$lock_hash" ]; then
  echo "node_modules up to date"
else
  # MEDIASOUP_WORKER_BIN skips mediasoup's postinstall (GitHub download / pip / meson
  # subproject downloads, all unreachable offline); step 3 provides the worker.
  # ONNXRUNTIME_NODE_INSTALL=skip skips the CUDA download; the CPU provider is bundled.
  MEDIASOUP_WORKER_BIN=/nonexistent ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
  echo "$lock_hash" > node_modules/.reenact-lock-hash
fi

step "mediasoup worker"
bash scripts/build-mediasoup-worker.sh

if [ -f models/build.ts ]; then
  step "ONNX models"
  node --import tsx models/build.ts
fi

step "independent face grader (dlib 68-point)"
bash scripts/build-dlib-grader.sh

step "browser client"
node --import tsx client/build.ts

step "DTLS handshake check (wrtc peer -> mediasoup worker)"
node --import tsx scripts/check-mediasoup.ts

printf '\nset-up done in %ss\n' "$(( $(date +%s) - t_start ))"
