#!/usr/bin/env bash
# The prepared GPU device check (issue 16, docs/gpu.md): the batching bench (loadtest/bench-batch.ts)
# for the CPU provider against WebGPU at batch 1, 4, 16 and 32 (tracker, and the warp on the CPU
# against the GPU), on a machine that has a GPU but
# no Node, no ffmpeg and no npm: everything it needs travels in two ignored folders.
#
#   bash scripts/gpu-check.sh pack            # here: fills .gpu-check/ and .gl/ (about 45 MiB; with the
#                                             # tracked tree it must stay under the device's 64 MiB)
#   bash scripts/gpu-check.sh run [OUTDIR]    # there: unpacks, runs, writes OUTDIR/gpu-check.json
#
# On the lent machine (the device tool), in one call with carry [".gpu-check", ".gl"]:
#   bash scripts/gpu-check.sh run "$OUT"
#
# What pack puts in .gpu-check/: this machine's node binary (xz), onnxruntime-node with its
# library and onnxruntime-common, and the webgpu package's Dawn for the warp (tar.xz), the bench bundled into one ES module by esbuild
# (onnxruntime-node left outside it), the converted models, and 24 decoded fixture frames
# (480x360 I420; that machine has no ffmpeg). .gl/ holds Debian's Vulkan and GL loader packages
# (the device README: that image may lack libvulkan; the NVIDIA driver's ICD is on the host).
# Environment: GPU_CHECK_BATCH (default 1,4,16,32), GPU_CHECK_PROVIDERS (default cpu,webgpu),
# GPU_CHECK_STEPS (default 20).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PACK=.gpu-check
GL=.gl

pack() {
  rm -rf "$PACK"
  mkdir -p "$PACK" "$GL"
  echo "node $(node -v) -> $PACK/node.xz"
  xz -T0 -9 -c "$(command -v node)" >"$PACK/node.xz"
  echo "onnxruntime-node and webgpu (Dawn) -> $PACK/ort.tar.xz"
  tar -C node_modules -cf - onnxruntime-common \
    onnxruntime-node/package.json onnxruntime-node/dist onnxruntime-node/lib \
    onnxruntime-node/bin/napi-v6/linux/x64 \
    webgpu/package.json webgpu/index.js webgpu/dist/linux-x64 | xz -T0 -6 >"$PACK/ort.tar.xz"
  echo "models -> $PACK/models.tar.xz"
  npm run -s build:models >/dev/null
  # The bench runs the 468-point landmark model: the attention model (4.7 MiB) stays behind.
  tar -C models -cf - --exclude=out/face_landmark_with_attention.onnx out | xz -T0 -6 >"$PACK/models.tar.xz"
  echo "bench bundle -> $PACK/bench.mjs"
  npx esbuild loadtest/bench-batch.ts --bundle --platform=node --format=esm --target=node20 \
    --external:onnxruntime-node --external:webgpu --outfile="$PACK/bench.mjs" --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
  echo "frames -> $PACK/frames.i420.xz"
  node --import tsx loadtest/bench-batch.ts --save-frames "$PACK/frames.i420" --frame-size 480x360 --per-clip 6
  xz -T0 -6 -f "$PACK/frames.i420"
  git rev-parse HEAD >"$PACK/commit"
  if ! ls "$GL"/libvulkan1_*.deb >/dev/null 2>&1; then
    echo "Vulkan/GL loader packages -> $GL/"
    local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
    mkdir -p /tmp/amd64/partial
    apt-get "${o[@]}" update >/dev/null
    (cd "$GL" && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  fi
  local tree packed
  tree=$(git ls-files -z | xargs -0 stat -c %s | awk '{s+=$1} END {print s}')
  packed=$(du -cb "$PACK" "$GL" | tail -1 | cut -f1)
  echo "packed $((packed / 1048576)) MiB + tracked tree $((tree / 1048576)) MiB = $(((packed + tree) / 1048576)) MiB (the device takes 64)"
  if [ $((packed + tree)) -gt $((64 * 1048576)) ]; then echo "too large for one device call" >&2; exit 1; fi
}

run() {
  local out=${1:-$PWD/gpu-check-out}
  mkdir -p "$out"
  local dir=/tmp/gpu-check
  rm -rf "$dir" && mkdir -p "$dir/node_modules"
  if [ "$(id -u)" = 0 ] && ! ldconfig -p | grep -q libvulkan.so.1; then
    for f in "$GL"/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  fi
  xz -dc "$PACK/node.xz" >"$dir/node" && chmod +x "$dir/node"
  xz -dc "$PACK/ort.tar.xz" | tar -C "$dir/node_modules" -xf -
  xz -dc "$PACK/models.tar.xz" | tar -C "$dir" -xf -
  xz -dc "$PACK/frames.i420.xz" >"$dir/frames.i420"
  cp "$PACK/bench.mjs" "$dir/"
  {
    echo "commit $(cat "$PACK/commit" 2>/dev/null || echo unknown)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || echo "nvidia-smi: none"
    echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"
    ldconfig -p | grep -c libvulkan.so.1 | sed 's/^/libvulkan entries: /'
    nproc | sed 's/^/cpus: /'
  } | tee "$out/machine.txt"
  (cd "$dir" && ./node bench.mjs --provider "${GPU_CHECK_PROVIDERS:-cpu,webgpu}" --batch "${GPU_CHECK_BATCH:-1,4,16,32}" \
    --steps "${GPU_CHECK_STEPS:-20}" --frames frames.i420 --frame-size 480x360 --models-dir "$dir/out" --out "$out/gpu-check.json") 2>&1 | tee "$out/gpu-check.log"
}

case "${1:-}" in
  pack) pack ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 pack | run [OUTDIR]" >&2; exit 2 ;;
esac
