#!/usr/bin/env bash
# Builds the independent face grader (loadtest/eval/dlib68.cpp, dlib's HOG detector + 68-point
# shape predictor from Debian's libdlib-dev / libdlib-data) into
#   ${XDG_CACHE_HOME:-$HOME/.cache}/reenact/dlib-grader/<key>/dlib68
# with the model next to it (uncompressed), and records both in
#   ${XDG_CACHE_HOME:-$HOME/.cache}/reenact/dlib-grader/current.json
# which loadtest/eval/grader.ts reads. <key> hashes the source, the dlib version and the compiler
# command, so a second run with nothing changed does no work. Prints the binary and model paths.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[dlib-grader] %s\n' "$*"; }
die() { printf '[dlib-grader] error: %s\n' "$*" >&2; exit 1; }

SRC=loadtest/eval/dlib68.cpp
MODEL_NAME=shape_predictor_68_face_landmarks.dat
ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/reenact/dlib-grader"
[ -f "$SRC" ] || die "$SRC is missing"

missing=()
for p in libdlib-dev libdlib-data g++; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  die "missing Debian packages: ${missing[*]}; run npm run setup (as root), or: sudo apt-get install -y --no-install-recommends ${missing[*]}"
fi

# The model: Debian ships it under /usr/share/dlib, possibly bzip2-compressed.
model_src=$(dpkg -L libdlib-data | grep -E "/${MODEL_NAME}(\.bz2)?\$" | head -n1 || true)
[ -n "$model_src" ] && [ -f "$model_src" ] || die "libdlib-data does not provide ${MODEL_NAME} (dpkg -L libdlib-data); reinstall it"

# Link flags: not pkg-config's (dlib-1.pc names libblas.so/liblapack.so, which only the -dev
# packages provide). Debian's dlib headers enable BLAS/LAPACK, so the program calls cblas itself:
# link the runtime sonames that libdlib19.1 already depends on.
DLIB_FLAGS=(-Wl,--as-needed -ldlib -lpthread -l:libblas.so.3 -l:liblapack.so.3)
CXX_CMD=(g++ -std=c++17 -O2 -DNDEBUG -DDLIB_NO_GUI_SUPPORT -o)
dlib_version=$(dpkg-query -W -f='${Version}' libdlib-dev)
key=$( { sha256sum "$SRC" | cut -d' ' -f1; echo "$dlib_version"; echo "${CXX_CMD[*]} ${DLIB_FLAGS[*]}"; g++ -dumpfullversion; } | sha256sum | cut -c1-16)
dir="$ROOT/$key"
bin="$dir/dlib68"
mkdir -p "$dir"

# Model, uncompressed, linked into the build folder (a compressed one is unpacked once, shared).
model="$dir/$MODEL_NAME"
if [[ "$model_src" == *.bz2 ]]; then
  unpacked="$ROOT/model/$MODEL_NAME"
  if [ ! -s "$unpacked" ] || [ "$model_src" -nt "$unpacked" ]; then
    command -v bzip2 >/dev/null || die "bzip2 is needed to unpack $model_src (apt-get install bzip2)"
    say "unpacking $model_src"
    mkdir -p "$ROOT/model"
    bzip2 -dc "$model_src" > "$unpacked.tmp.$$"
    mv -f "$unpacked.tmp.$$" "$unpacked"
  fi
  ln -sfn "$unpacked" "$model"
else
  ln -sfn "$model_src" "$model"
fi

if [ -x "$bin" ] && [ -f "$dir/.ok" ]; then
  say "cached build"
else
  t0=$(date +%s)
  say "compiling $SRC (g++ -O2, under a minute)"
  tmp="$bin.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  "${CXX_CMD[@]}" "$tmp" "$SRC" "${DLIB_FLAGS[@]}" || die "compiling $SRC failed (see above)"
  mv -f "$tmp" "$bin"
  trap - EXIT
  # Self-check: a blank frame must load the model and answer "no face".
  answer=$( { printf '8 8\n'; head -c 192 /dev/zero; } | "$bin" "$model" ) || die "$bin failed its self-check"
  [ "$answer" = "0" ] || die "$bin answered '$answer' to a blank frame, expected 0"
  touch "$dir/.ok"
  say "built in $(( $(date +%s) - t0 ))s"
fi

json_str() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }
printf '{"bin":%s,"model":%s,"dlib":%s,"key":%s}\n' \
  "$(json_str "$bin")" "$(json_str "$model")" "$(json_str "$dlib_version")" "$(json_str "$key")" > "$ROOT/current.json.tmp.$$"
mv -f "$ROOT/current.json.tmp.$$" "$ROOT/current.json"
say "binary: $bin"
say "model:  $model"
