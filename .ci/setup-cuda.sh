# Sourced by .ci/run: installs the pinned NVRTC wheel (no GPU, no toolkit needed) and puts its
# library on the loader path, so crates/cuda/tests/compile_kernels.rs can compile every kernel
# variant for sm_80, sm_90a and sm_100a. Pinned to 13.0.x: driver 580 refuses newer PTX ISAs.
fs_nvrtc_dir=/tmp/flashsampling-nvrtc
if ! ls "$fs_nvrtc_dir"/nvidia/cu13/lib/libnvrtc.so.13 >/dev/null 2>&1; then
  python3 -m pip install -q --no-deps --target "$fs_nvrtc_dir" "nvidia-cuda-nvrtc==13.0.88"
fi
export LD_LIBRARY_PATH="$fs_nvrtc_dir/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export FLASHSAMPLING_REQUIRE_NVRTC=1
# ptxas from the pinned nvcc wheel: the same test assembles each architecture's PTX and checks that
# no kernel spills registers and none needs more than 48 KB of static shared memory (a module that
# does would fail to load, on a GPU only).
fs_ptxas_dir=/tmp/flashsampling-ptxas
if ! ls "$fs_ptxas_dir"/nvidia/cu13/bin/ptxas >/dev/null 2>&1; then
  python3 -m pip install -q --no-deps --target "$fs_ptxas_dir" "nvidia-cuda-nvcc==13.0.88"
fi
export FLASHSAMPLING_PTXAS="$fs_ptxas_dir/nvidia/cu13/bin/ptxas"
