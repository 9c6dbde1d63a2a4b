#!/usr/bin/env bash
# Everything a GPU session should check and time, in one run on the device
# machine (CONTRIBUTING.md, "Checks on a GPU"): the CUDA tests (loss kernels,
# engine operations, the CUDA engine against the CPU engine; the C++ programs
# list their FAIL lines) and the benchmarks, with the card named. Results go
# to $OUT (the device tool brings them back).
#
# Here:  npm run compile:native && npm run compile:ts
#        ../shared/tools/device-pack build dist        # prints the size (keep under 64 MiB)
# Then:  device run, carry [".device"], command "bash .device/run bash scripts/device-check.sh"
set -u
out=${OUT:-$(mktemp -d)}
step() {  # step <name> <command...>: runs it, keeps its output and exit status, goes on
  local name=$1; shift
  echo "== $name: $*"
  local t0=$SECONDS
  "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  echo "$name rc=$rc ${SECONDS}s (+$((SECONDS - t0))s)" | tee -a "$out/summary.txt"
  tail -n 5 "$out/$name.txt"
  grep -E '^FAIL' "$out/$name.txt" | head -n 20  # the C++ test programs' failing checks, by name
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
node -e "import('./dist/index.js').then((m) => console.log(JSON.stringify(m.backendInfo(), null, 2)))" > "$out/backend.json" 2>&1
step backend-conformance build/Release/adcorre_backend_test
# the programs npm run test:cuda-emulated runs on the CPU, here on the GPU
step loss-kernels build/Release/adcorre_loss_cuda_test
step engine-steps build/Release/adcorre_engine_cuda_test
step test-gpu npx ava test/cuda.test.js test/engine-ops.test.js test/engine-cuda.test.js --verbose
step bench-train-table node bench/train.js --device cuda --table --json --seconds 5
step bench-train-cpu node bench/train.js --runs compact:64 --json --seconds 5
step bench-loss node bench/loss.js --json
echo "results in $out"
