#!/usr/bin/env bash
# Builds libflashsampling and installs it under PREFIX: include/flashsampling.h,
# lib/libflashsampling.{so,a}, lib/pkgconfig/flashsampling.pc and
# lib/cmake/FlashSampling/ (find_package(FlashSampling)).
# Usage: ffi/install.sh PREFIX
#   NO_BUILD=1: install what is already built; LIB_DIR: where the libraries are
#   (default ${CARGO_TARGET_DIR:-target}/release).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 PREFIX" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$1"
prefix="$(cd "$1" && pwd)"
target="${LIB_DIR:-${CARGO_TARGET_DIR:-$root/target}/release}"

[ "${NO_BUILD:-}" = 1 ] || cargo build --release -p flashsampling-ffi --manifest-path "$root/ffi/Cargo.toml"

# The version the header was generated for is the one the library reports.
macro() { sed -n "s/^#define FLASHSAMPLING_VERSION_$1 //p" "$root/include/flashsampling.h"; }
major="$(macro MAJOR)" minor="$(macro MINOR)" patch="$(macro PATCH)"
version="$major.$minor.$patch"

fill() { sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@MAJOR@|$major|g" -e "s|@MINOR@|$minor|g" "$1" > "$2"; }

install -d "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/FlashSampling"
install -m 644 "$root/include/flashsampling.h" "$prefix/include/"
install -m 755 "$target/libflashsampling.so" "$prefix/lib/"
install -m 644 "$target/libflashsampling.a" "$prefix/lib/"
fill "$root/ffi/pkg/flashsampling.pc.in" "$prefix/lib/pkgconfig/flashsampling.pc"
fill "$root/ffi/pkg/FlashSamplingConfig.cmake.in" "$prefix/lib/cmake/FlashSampling/FlashSamplingConfig.cmake"
fill "$root/ffi/pkg/FlashSamplingConfigVersion.cmake.in" \
  "$prefix/lib/cmake/FlashSampling/FlashSamplingConfigVersion.cmake"
echo "installed libflashsampling $version under $prefix"
