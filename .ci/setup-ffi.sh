# Sourced by .ci/run: the C toolchain, valgrind, pkg-config and CMake that ffi/tests/c_consumers.rs
# uses. Installs only what is missing (Debian, as root).
ffi_missing=""
for ffi_tool in gcc:gcc g++:g++ valgrind:valgrind pkg-config:pkg-config cmake:cmake; do
  command -v "${ffi_tool%%:*}" > /dev/null || ffi_missing="$ffi_missing ${ffi_tool#*:}"
done
if [ -n "$ffi_missing" ]; then
  echo "installing:$ffi_missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $ffi_missing > /dev/null
fi
unset ffi_missing ffi_tool
