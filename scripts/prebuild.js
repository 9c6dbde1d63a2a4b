// `npm run prebuild` (and `npm pack` / `npm publish`, through prepack): a clean
// cmake-js build of the addon alone, without the test programs, in its own
// folder (build-prebuild/, so a developer's build/ is untouched), laid out as
// node-gyp-build expects: prebuilds/<platform>-<arch>/adcorre-native.napi[.glibc].node.
//
// On linux-x64 the CUDA kernels are compiled in whenever nvcc is found and are
// required by `npm publish` (ADCORRE_CUDA=ON, cudart linked statically, the
// architectures of CMakeLists.txt): the published binary serves GPU and
// CPU-only machines alike. ADCORRE_CUDA=OFF makes a CPU-only one.
//
// Why not prebuildify: it drives node-gyp only (its issue #49: no cmake-js
// backend), and a node-gyp build cannot compile the CUDA kernels; binding.gyp
// remains for CPU-only builds where cmake is unavailable (npm run prebuild:cpu).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findProgram } from './find-program.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const out = join(root, 'build-prebuild');

const env = { ...process.env, ADCORRE_BUILD_TESTS: 'OFF' };
const nvcc = findProgram(['nvcc', '/usr/local/cuda/bin/nvcc']);
if (!env.ADCORRE_CUDA && process.platform === 'linux' && process.arch === 'x64') {
  if (nvcc || env.npm_command === 'publish') env.ADCORRE_CUDA = 'ON';
  else
    console.warn(
      'prebuild: nvcc not found, so this prebuild is CPU-only (fine for a local check; `npm publish` requires the CUDA kernels)',
    );
}

const started = Date.now();
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const build = spawnSync(process.execPath, [cmakeJs, 'rebuild', '--out', out, '--log-level', 'warn'], {
  cwd: root,
  env,
  stdio: 'inherit',
});
if (build.status !== 0) {
  console.error(
    `prebuild: the build failed (exit status ${build.status ?? build.signal})` +
      (env.ADCORRE_CUDA === 'ON' ? '; a CPU-only prebuild: ADCORRE_CUDA=OFF npm run prebuild' : ''),
  );
  process.exit(build.status ?? 1);
}

const target = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const libc =
  process.platform === 'linux' ? (process.report?.getReport().header.glibcVersionRuntime ? '.glibc' : '.musl') : '';
const file = join(target, `adcorre-native.napi${libc}.node`);
rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
copyFileSync(join(out, 'Release', 'adcorre_native.node'), file);

// Prove it loads, and say what it contains.
const binding = require(file);
const { cuda, cpu } = binding.backendInfo();
if (env.ADCORRE_CUDA === 'ON' && !cuda.compiled) {
  console.error('prebuild: ADCORRE_CUDA=ON but the binary has no CUDA kernels');
  process.exit(1);
}
const mib = (statSync(file).size / 2 ** 20).toFixed(1);
console.log(`prebuild: ${file} (${mib} MiB, ${((Date.now() - started) / 1000).toFixed(0)} s)`);
console.log(
  `  CUDA compiled in: ${cuda.compiled}${cuda.compiled ? ` (${cuda.archs})` : ''}; CPU threads: ${cpu.threads}`,
);
