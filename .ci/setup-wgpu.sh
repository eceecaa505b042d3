# Sourced by .ci/run (as root on Debian) before the workspace tests: installs Mesa lavapipe, the
# Vulkan CPU driver the wgpu backend runs on in CI, and makes the conformance suite require it.
if ! ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null; }
fi
export FLASHSAMPLING_REQUIRE="${FLASHSAMPLING_REQUIRE:+$FLASHSAMPLING_REQUIRE,}wgpu"
