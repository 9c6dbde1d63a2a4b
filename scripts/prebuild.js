// `npm run prebuild`: a clean cmake-js build laid out as node-gyp-build
// expects, prebuilds/<platform>-<arch>/adcorre-native.napi[.glibc].node.
// We lay out prebuilds/ ourselves instead of running prebuildify because
// prebuildify drives node-gyp only (its issue #49: no cmake-js backend), and
// a node-gyp build cannot compile the CUDA kernels; binding.gyp remains for
// CPU-only builds where cmake is unavailable (npm run prebuild:cpu).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const build = spawnSync(process.execPath, [cmakeJs, 'rebuild'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const target = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const libc =
  process.platform === 'linux' ? (process.report?.getReport().header.glibcVersionRuntime ? '.glibc' : '.musl') : '';
const file = join(target, `adcorre-native.napi${libc}.node`);
rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
copyFileSync(join(root, 'build', 'Release', 'adcorre_native.node'), file);

// Prove it loads, and say what it contains.
const binding = require(file);
const { cuda, cpu } = binding.backendInfo();
console.log(`prebuild: ${file}`);
console.log(
  `  CUDA compiled in: ${cuda.compiled}${cuda.compiled ? ` (${cuda.archs})` : ''}; CPU threads: ${cpu.threads}`,
);
