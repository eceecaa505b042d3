# SmolLM2-135M for the real-model tests (examples/smollm2): fetched once into the cache; the tests
# fail rather than skip if it is missing.
bash tools/fetch-smollm2.sh
export FLASHSAMPLING_REQUIRE="${FLASHSAMPLING_REQUIRE:+$FLASHSAMPLING_REQUIRE,}smollm2"
