#!/usr/bin/env bash
# One call on the GPU machine, after packing here:
#   ../shared/tools/gpu-pack --vulkan && cargo build --release -p flashsampling-ffi \
#     && mkdir -p .gpu/lib && cp target/release/libflashsampling.so .gpu/lib/ && strip .gpu/lib/*.so
# then, carrying .gpu:  source .gpu/prelude.sh; bash tools/gpu-check.sh
# Runs what the machine can: backends found, the conformance suite on every backend present, the
# full battery on CUDA, the benchmark, compute-sanitizer. Logs and CSV go to $OUT (or ./gpu-out).
set -uo pipefail
out="${OUT:-gpu-out}"
# The image keeps libnvrtc.so.13 and libcublas.so.13 off the default loader path.
export LD_LIBRARY_PATH="/usr/local/cuda-13.0/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mkdir -p "$out"
step() { echo; echo "=== $*"; }
step info
flashsampling info 2>&1 | tee "$out/info.txt"
step "conformance suite (every backend present)"
conformance-test --nocapture --test-threads=1 2>&1 | tee "$out/conformance.log" | grep -E "running on|skipped|FAIL|test result"
# The full battery (10,000,000 samples at V = 128,256) on these backends; wgpu's takes too long for one call.
for backend in ${GPU_CHECK_FULL:-cuda}; do
  if grep -q "^$backend: available" "$out/info.txt"; then
    step "full battery on $backend"
    flashsampling verify --backend "$backend" --level full 2>&1 | tee "$out/verify-$backend.log" | tail -25
  fi
done
if grep -q "^cuda: available" "$out/info.txt"; then
  step "benchmark (cuda)"
  flashsampling bench --backend cuda --csv "$out/bench-cuda.csv" 2>&1 | tee "$out/bench-cuda.log" | tail -60
  step "CUDA tests (every kernel variant against the CPU reference)"
  gpu-test --nocapture --test-threads=1 2>&1 | tee "$out/gpu-test.log" | grep -E "identical|test result"
  step "C++ consumer of the device-pointer path (cudaMalloc, its own stream)"
  if [ -e .gpu/lib/libflashsampling.so ]; then
    g++ -std=c++17 -O1 tests/c/cuda_example.cpp -Iinclude -I/usr/local/cuda/include -L.gpu/lib -lflashsampling \
      -L/usr/local/cuda/lib64 -lcudart -Wl,-rpath,"$PWD/.gpu/lib" -o "$out/cuda_example" 2>&1 | tail -20
    "$out/cuda_example" 2>&1 | tee "$out/cuda-example.log" | tail -20
  else
    echo "skipped: .gpu/lib/libflashsampling.so was not packed"
  fi
  step "compute-sanitizer memcheck, racecheck and synccheck"
  for tool in memcheck racecheck synccheck; do
    compute-sanitizer --tool "$tool" --error-exitcode 1 flashsampling verify --backend cuda --filter "every output" \
      > "$out/sanitizer-$tool.log" 2>&1 && echo "$tool: clean" || { echo "$tool: FAILED"; tail -20 "$out/sanitizer-$tool.log"; }
    compute-sanitizer --tool "$tool" --error-exitcode 1 gpu-test --test-threads=1 tensor_core \
      > "$out/sanitizer-$tool-gpu-test.log" 2>&1 && echo "$tool (tensor-core variants): clean" \
      || { echo "$tool (tensor-core variants): FAILED"; tail -20 "$out/sanitizer-$tool-gpu-test.log"; }
    if [ -x "$out/cuda_example" ]; then
      compute-sanitizer --tool "$tool" --error-exitcode 1 "$out/cuda_example" > "$out/sanitizer-$tool-cuda-example.log" 2>&1 \
        && echo "$tool (C++ device-pointer consumer): clean" \
        || { echo "$tool (C++ device-pointer consumer): FAILED"; tail -20 "$out/sanitizer-$tool-cuda-example.log"; }
    fi
  done
fi
if grep -q "^wgpu: available" "$out/info.txt"; then
  step "benchmark (wgpu)"
  flashsampling bench --backend wgpu --batches 1,4,16 --csv "$out/bench-wgpu.csv" 2>&1 | tee "$out/bench-wgpu.log" | tail -25
fi
ls "$out"/bench-*.csv >/dev/null 2>&1 && python3 tools/plot_bench.py "$out"/bench-*.csv -o "$out/bench.png"
# The device tool brings back few files: the logs travel as one archive.
(cd "$out" && tar czf gpu-logs.tgz ./*.log info.txt && rm -f ./*.log)
