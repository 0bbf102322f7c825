#!/usr/bin/env bash
# scripts/install-deps.sh: install every Debian package that discdiff's build,
# tests and benchmarks need. Idempotent: checks with dpkg-query first, runs
# `apt-get update` + `apt-get install` only when something is missing, and prints
# a single line when everything is already there. Works as root or through sudo.
#
#   scripts/install-deps.sh            # install what is missing
#   scripts/install-deps.sh --check    # only report; exit 1 if something is missing
#   scripts/install-deps.sh --list     # print the package list and exit
#   scripts/install-deps.sh --bench    # also what only the benchmarks need (none beyond
#                                      # the default set today); `make bench` passes it
#
# PyTorch: Debian's python3-torch 1.13 (+ python3-numpy, about 60 MB of downloads) is in the
# default set: the interop test app.interop_torch loads discdiff checkpoints into an
# independent PyTorch DDiT, and bench/compare_torch uses it as the reference.
#
# MPI: Open MPI (libopenmpi-dev for find_package(MPI), openmpi-bin for mpirun); optional at
# build time (DISCDIFF_ENABLE_MPI turns itself off when it is absent).
# OpenMP: g++'s -fopenmp uses GCC's libgomp (libgomp1, a dependency of g++), so no
# extra package is needed (libomp-dev is LLVM's runtime, for clang only).
# Thrust: the CUDA toolkit's CCCL when /usr/local/cuda has it (nothing to install),
# else Debian's libthrust-dev (with libcub-dev); either serves the Thrust-OMP
# backend built by plain g++.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"

packages=(
  # toolchain
  g++ cmake make
  # libraries (header-only or -dev)
  libeigen3-dev            # Eigen 3.4: GEMMs, dense expm oracle
  libxtensor-dev xtl-dev   # xtensor (xtl comes with it), .npy I/O
  libboost-dev libboost-math-dev  # Boost.Math: quadrature, distributions
  doctest-dev              # tests
  libbenchmark-dev         # Google Benchmark (bench/)
  libcli11-dev             # apps: command line
  nlohmann-json3-dev       # apps: JSON, safetensors headers
  liblzma-dev              # data: .xz corpora read directly (data/corpus.hpp)
  libsentencepiece-dev     # data: SentencePiece tokenizers (optional at build time, data/sentencepiece.hpp)
  python3-matplotlib       # scripts/plot.py: training curves as PNG
  libopenmpi-dev openmpi-bin  # MPI: data-parallel `mpirun -np K discdiff train` (docs/distributed.md)
  # OpenBLAS, OpenMP flavour (shares libgomp's thread pool with our OpenMP code)
  libopenblas-dev libopenblas-openmp-dev libopenblas0-openmp
)

have_cuda_thrust() {
  local d
  for d in "$CUDA_HOME/lib64/cmake/thrust" "$CUDA_HOME"/targets/*/lib/cmake/thrust; do
    [[ -f "$d/thrust-config.cmake" ]] && return 0
  done
  return 1
}
if have_cuda_thrust; then
  thrust_note="Thrust from $CUDA_HOME (CCCL)"
else
  packages+=(libthrust-dev libcub-dev)
  thrust_note="Thrust from libthrust-dev"
fi

# The PyTorch reference of app.interop_torch and bench/compare_torch (Debian's python3-torch,
# run with /usr/bin/python3; it uses libopenblas0-openmp above, never the reference BLAS).
packages+=(python3-torch python3-numpy)
bench_packages=()

mode=install
list=0
for arg in "$@"; do
  case "$arg" in
    --check) mode=check ;;
    --list) list=1 ;;
    --bench) packages+=("${bench_packages[@]}") ;;
    -h|--help) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-deps: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
if ((list)); then printf '%s\n' "${packages[@]}"; exit 0; fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: ERROR: dpkg-query/apt-get not found; this script supports Debian (bookworm) only." >&2
  echo "install-deps: needed: ${packages[*]}" >&2
  exit 1
fi

missing_packages() {
  local p status
  for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    [[ "$status" == ii* ]] || echo "$p"
  done
}

mapfile -t missing < <(missing_packages)
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present ($thrust_note)"
  exit 0
fi
if [[ $mode == check ]]; then
  echo "install-deps: missing: ${missing[*]}" >&2
  exit 1
fi

if [[ $(id -u) -eq 0 ]]; then
  as_root=(env DEBIAN_FRONTEND=noninteractive)
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
else
  echo "install-deps: ERROR: missing packages (${missing[*]}) and not root, and sudo is not available." >&2
  echo "install-deps: run as root: apt-get install ${missing[*]}" >&2
  exit 1
fi

trap 'echo "install-deps: ERROR: installing ${missing[*]} failed (see above)" >&2' ERR
echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
apt_opts=(-y -q -o Dpkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)
"${as_root[@]}" apt-get "${apt_opts[@]}" update
"${as_root[@]}" apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}"
trap - ERR

mapfile -t still_missing < <(missing_packages)
if ((${#still_missing[@]} != 0)); then
  echo "install-deps: ERROR: still missing after apt-get install: ${still_missing[*]}" >&2
  exit 1
fi
echo "install-deps: installed ${missing[*]}; all ${#packages[@]} packages present ($thrust_note)"
