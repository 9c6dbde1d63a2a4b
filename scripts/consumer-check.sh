#!/usr/bin/env bash
# The consumer path, as a user meets the package (run by npm test, so by CI):
#   npm pack (prepack builds the linux-x64 prebuild: CPU and CUDA kernels),
#   the tarball's contents checked, then installed into empty temporary projects
#   with no environment variables beyond HOME and PATH:
#     A. the normal PATH;
#     B. cmake, the C and C++ compilers, nvcc, make and ninja hidden from PATH (the prebuild serves it);
#     C. B's project with the prebuild removed and the package rebuilt: the install still succeeds with
#        one clear message, inference works, and the loss names what to do.
#   In each: import adCorreLoss and compute a loss with gradients, npx adcorre-predict on an image with
#   the bundled default model, npx adcorre-eval --help.
# The projects' package.json denies onnxruntime-node's install step (npm's allowScripts), as a user's
# must where the machine cannot reach NuGet (it downloads onnxruntime's CUDA provider from there); README.
#   bash scripts/consumer-check.sh [--keep]      (--keep leaves the temporary folder for a look)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/adcorre-consumer.XXXXXX")
[[ "${1:-}" == --keep ]] || trap 'rm -rf "$work"' EXIT
passed=0
failed=0
ok() { echo "  ok: $*"; passed=$((passed + 1)); }
fail() { echo "  FAILED: $*"; failed=$((failed + 1)); }
clean_env() { env -i HOME="$HOME" PATH="$1" "${@:2}"; }

echo "consumer check in $work"

# --- pack ---------------------------------------------------------------------------------------
t0=$SECONDS
if ! (cd "$root" && npm pack --pack-destination "$work" > "$work/pack.log" 2>&1); then
  tail -n 30 "$work/pack.log"
  fail "npm pack"
  echo "consumer: $passed passed, $failed failed"
  exit 1
fi
tarball=$(ls "$work"/adcorre-native-*.tgz)
echo "  npm pack: $(basename "$tarball"), $(du -h "$tarball" | cut -f1), $((SECONDS - t0)) s (prebuild included)"
tar tzf "$tarball" > "$work/contents.txt"
echo "  $(wc -l < "$work/contents.txt") files"
if grep -q '^package/prebuilds/linux-x64/adcorre-native\.napi\.glibc\.node$' "$work/contents.txt"; then
  ok "the tarball holds the linux-x64 prebuild"
else
  fail "no prebuilds/linux-x64/adcorre-native.napi.glibc.node in the tarball"
fi
unwanted=$(grep -E '\.map$|_test\.|^package/(test|bench|\.ci|runs|build|build-prebuild)/|KERNELS\.md$|^package/scripts/(prebuild|consumer-check|device-check|compare-runs|demo-model|clang-format)' "$work/contents.txt")
if [[ -z "$unwanted" ]]; then ok "no source maps, tests, benchmarks, dev scripts or notes in the tarball"; else
  fail "unwanted files in the tarball: $(echo "$unwanted" | head -5 | tr '\n' ' ')"
fi

# --- a PATH without build tools -----------------------------------------------------------------
nobuild="$work/nobuild-bin"
mkdir -p "$nobuild"
hidden='^(cmake|ccmake|cpack|ctest|c\+\+|cc|gcc|g\+\+|cpp|clang|clang\+\+|clang-[0-9.]+|clang\+\+-[0-9.]+|nvcc|make|gmake|ninja|ld|(x86_64|aarch64)-linux-gnu-.*|(gcc|g\+\+|c\+\+|cpp)-[0-9.]+)$'
for dir in /usr/local/bin /usr/bin /bin; do
  [[ -d "$dir" ]] || continue
  for f in "$dir"/*; do
    name=$(basename "$f")
    [[ "$name" =~ $hidden || -e "$nobuild/$name" ]] || ln -s "$f" "$nobuild/$name"
  done
done
if PATH="$nobuild" command -v cmake > /dev/null || PATH="$nobuild" command -v g++ > /dev/null; then
  fail "build tools still on the reduced PATH"
fi


make_project() {  # make_project <dir>
  mkdir -p "$1"
  printf '{ "name": "consumer", "private": true, "type": "module",\n  "allowScripts": { "onnxruntime-node": false } }\n' > "$1/package.json"
  cat > "$1/loss.js" << 'EOF'
import { adCorreLoss, backendInfo, VERSION } from 'adcorre-native';
const k = 7, n = 50, d = 256, numClasses = 7;
const embeddings = new Float32Array(k * n * d).map((_, i) => Math.sin(i * 12.9898) * 0.5);
const labels = Int32Array.from({ length: n }, (_, i) => i % numClasses);
const r = adCorreLoss(embeddings, labels, { k, d, numClasses, grad: true });
if (!Number.isFinite(r.loss) || r.grad.length !== k * n * d || !r.grad.some((g) => g !== 0)) throw new Error('bad loss');
const info = backendInfo();
console.log(`adcorre-native ${VERSION}: loss ${r.loss.toFixed(6)} on ${r.device}; CUDA compiled: ${info.cuda.compiled}`);
EOF
  cat > "$1/crop.js" << 'EOF'
import sharp from 'sharp';
const px = Buffer.alloc(48 * 48);
for (let y = 0; y < 48; y++) for (let x = 0; x < 48; x++) px[y * 48 + x] = 128 + 80 * Math.sin(x / 5) * Math.cos(y / 7);
await sharp(px, { raw: { width: 48, height: 48, channels: 1 } }).png().toFile(process.argv[2]);
EOF
}

check_project() {  # check_project <dir> <PATH> <label>
  local dir=$1 path=$2 label=$3
  if (cd "$dir" && clean_env "$path" node loss.js > loss.out 2>&1); then ok "$label: $(cat "$dir/loss.out")"; else
    fail "$label: adCorreLoss: $(tail -n 5 "$dir/loss.out")"
  fi
  local image=$dir/crop.png  # a generated 48x48 face-crop-sized image: the check needs no data set
  (cd "$dir" && clean_env "$path" node crop.js crop.png)
  if (cd "$dir" && clean_env "$path" npx adcorre-predict "$image" > predict.out 2>&1) &&
    grep -q -E '(neutral|happy|sad|surprise|fear|disgust|anger) [0-9.]+%' "$dir/predict.out"; then
    ok "$label: adcorre-predict $(basename "$image"): $(head -n 1 "$dir/predict.out" | cut -f 2-3)"
  else
    fail "$label: adcorre-predict: $(tail -n 5 "$dir/predict.out")"
  fi
  if (cd "$dir" && clean_env "$path" npx adcorre-eval --help > eval.out 2>&1) && grep -q -i usage "$dir/eval.out"; then
    ok "$label: adcorre-eval --help"
  else
    fail "$label: adcorre-eval --help: $(tail -n 5 "$dir/eval.out")"
  fi
}

install_project() {  # install_project <dir> <PATH> <label>
  local t0=$SECONDS
  if (cd "$1" && clean_env "$2" npm install --no-audit --no-fund "$tarball" > install.log 2>&1); then
    ok "$3: npm install of the tarball, $((SECONDS - t0)) s"
    if [[ -d "$1/node_modules/adcorre-native/build" ]]; then fail "$3: it compiled from source"; else
      ok "$3: nothing compiled (the prebuild loads)"
    fi
  else
    fail "$3: npm install: $(tail -n 20 "$1/install.log")"
    return 1
  fi
}

echo "A. install with the normal PATH"
make_project "$work/a"
install_project "$work/a" "$PATH" A && check_project "$work/a" "$PATH" A

echo "B. install with cmake and the compilers hidden from PATH"
make_project "$work/b"
install_project "$work/b" "$nobuild" B && check_project "$work/b" "$nobuild" B

echo "C. no matching prebuild and no build tools: npm rebuild adcorre-native"
pkg="$work/b/node_modules/adcorre-native"
if [[ -d "$pkg" ]]; then
  rm -rf "$pkg/prebuilds"
  if (cd "$work/b" && clean_env "$nobuild" npm rebuild adcorre-native --foreground-scripts > rebuild.log 2>&1); then
    ok "C: the install succeeds without the addon"
  else
    fail "C: npm rebuild failed: $(tail -n 10 "$work/b/rebuild.log")"
  fi
  if grep -q 'cmake (>= 3.18) was not found on PATH' "$work/b/rebuild.log" && grep -q 'npm rebuild adcorre-native' "$work/b/rebuild.log" &&
    ! grep -q -E '^\s+at ' "$work/b/rebuild.log"; then
    ok "C: one clear message names what is missing and the command"
  else
    fail "C: the message: $(cat "$work/b/rebuild.log" | head -n 20)"
  fi
  if (cd "$work/b" && clean_env "$nobuild" node loss.js > loss.out 2>&1); then
    fail "C: adCorreLoss ran without an addon"
  elif grep -q 'npm rebuild adcorre-native' "$work/b/loss.out" && grep -q 'cmake (>= 3.18) was not found' "$work/b/loss.out"; then
    ok "C: adCorreLoss throws the advice with the cause found at install"
  else
    fail "C: adCorreLoss error: $(head -n 5 "$work/b/loss.out")"
  fi
  image=$work/b/crop.png
  if (cd "$work/b" && clean_env "$nobuild" npx adcorre-predict "$image" > predict.out 2>&1); then
    ok "C: adcorre-predict works without the addon"
  else
    fail "C: adcorre-predict without the addon: $(tail -n 5 "$work/b/predict.out")"
  fi
fi

echo "consumer: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
