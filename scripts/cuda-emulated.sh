#!/usr/bin/env bash
# The CUDA kernels executed on the CPU (issue #29): the CUDA sources compiled as
# host C++ against the HIP CPU Runtime (../shared/tools/hip-cpu, header-only, needs
# TBB) in build-emulated/ (never build/, which the addon uses), then
#   adcorre_backend_test      every op of the CUDA backend against the CPU backend
#   adcorre_loss_cuda_test    the Ad-Corre kernels against the CPU loss, the float64
#                             golden cases (../shared/golden) and their float drift
#   adcorre_engine_cuda_test  whole training steps, CUDA engine against CPU engine
# Prints each program's lines and a PASS/FAIL line per program; exits 1 if any failed.
# Skips (exit 0, with the reason) where the HIP CPU Runtime or TBB is absent.
#   npm run test:cuda-emulated      (npm test runs it too)
#   ADCORRE_HIP_CPU_DIR=/path/to/hip-cpu   another copy of the runtime
#   ADCORRE_EMULATED_JOBS=2                compile parallelism (default 2)
set -u
cd "$(dirname "$0")/.."
root=$PWD
hip=${ADCORRE_HIP_CPU_DIR:-$root/../shared/tools/hip-cpu}
build=$root/build-emulated
golden=$root/../shared/golden/adcorre-cases.json
t0=$SECONDS

if [ ! -f "$hip/include/hip/hip_runtime.h" ]; then
  echo "cuda-emulated: skipped: the HIP CPU Runtime is absent ($hip/include/hip/hip_runtime.h); set ADCORRE_HIP_CPU_DIR to a copy of https://github.com/ROCm/HIP-CPU"
  exit 0
fi
if ! { [ -f /usr/include/tbb/tbb.h ] || [ -f /usr/include/oneapi/tbb.h ] || [ -f /usr/local/include/tbb/tbb.h ] \
  || [ -f /usr/local/include/oneapi/tbb.h ]; }; then
  echo "cuda-emulated: skipped: TBB is absent; install with: apt-get install -y libtbb-dev"
  exit 0
fi
if ! command -v cmake > /dev/null; then
  echo "cuda-emulated: skipped: cmake is absent"
  exit 0
fi

echo "cuda-emulated: configuring and building in build-emulated/ (HIP CPU Runtime at $hip)"
cmake -S "$root" -B "$build" -DADCORRE_CUDA_EMULATED=ON -DADCORRE_HIP_CPU_DIR="$hip" -DCMAKE_BUILD_TYPE=Release \
  > "$build.configure.log" 2>&1 || {
  cat "$build.configure.log"
  echo "cuda-emulated: FAIL configure"
  exit 1
}
mv "$build.configure.log" "$build/configure.log"
if ! cmake --build "$build" -j "${ADCORRE_EMULATED_JOBS:-2}" \
  --target adcorre_backend_test adcorre_loss_cuda_test adcorre_engine_cuda_test > "$build/build.log" 2>&1; then
  grep -E "error|Error" "$build/build.log" | head -40
  echo "cuda-emulated: FAIL build (build-emulated/build.log)"
  exit 1
fi
echo "cuda-emulated: built in $((SECONDS - t0)) s"

# The golden cases as a flat text file the C++ test reads without a JSON parser.
golden_txt=""
if [ -f "$golden" ]; then
  golden_txt=$build/golden.txt
  node -e '
    const g = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const out = [String(g.cases.length)];
    for (const c of g.cases) {
      out.push([c.note.replace(/\s+/g, "-"), c.k, c.n, c.d, c.numClasses].join(" "));
      for (const key of ["labels", "classAccuracy", "embeddings"]) out.push(c[key].join(" "));
      out.push([c.fd, c.md, c.ed].join(" "));
      out.push(c.grad.join(" "));
    }
    require("fs").writeFileSync(process.argv[2], out.join("\n") + "\n");
  ' "$golden" "$golden_txt" || golden_txt=""
else
  echo "cuda-emulated: note: no golden cases at $golden; the loss kernels are checked against the CPU only"
fi

status=0
summary=""
run() {  # run <name> <program> [args]
  local name=$1
  shift
  local t=$SECONDS
  echo "== $name"
  "$@" > "$build/$name.log" 2>&1
  local rc=$?
  cat "$build/$name.log"
  local counts
  counts=$(tail -n 1 "$build/$name.log")
  if [ $rc -eq 0 ]; then
    summary+="PASS $name: $counts ($((SECONDS - t)) s)"$'\n'
  else
    summary+="FAIL $name (exit $rc): $counts ($((SECONDS - t)) s)"$'\n'
    status=1
  fi
}
run backend-conformance "$build/adcorre_backend_test"
run loss-kernels "$build/adcorre_loss_cuda_test" $golden_txt
run engine-steps "$build/adcorre_engine_cuda_test"
echo "== cuda-emulated summary"
printf "%s" "$summary"
echo "cuda-emulated: $((SECONDS - t0)) s in all"
exit $status
