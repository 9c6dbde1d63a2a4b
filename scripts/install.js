// npm's install hook.
//
// In the published package: the prebuilt binary in prebuilds/ is used when it
// loads on this machine (linux-x64 with glibc: CPU kernels and the CUDA
// kernels); otherwise the addon is compiled from source with cmake-js (the CUDA
// kernels too when nvcc is found), without the test programs. When it cannot
// be compiled (no cmake, no C++ compiler, or the build fails) the install
// still succeeds, with one message saying what is missing and how to fix it:
// inference (FER, adcorre-predict) does not need the addon, and the loss and
// training API throw the same advice when first used.
//
// In a clone of the repository (a .git folder beside package.json) the addon
// and its test programs are always compiled from source, and a failure fails
// the install: the test suite needs them.
//
// ADCORRE_BUILD_FROM_SOURCE=1 compiles even where a prebuilt binary loads.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findProgram } from './find-program.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const checkout = existsSync(join(root, '.git'));
const platform = `${process.platform}-${process.arch}`;
// Why the addon could not be built, kept for the loader's error (npm hides a
// dependency's install output unless the install fails).
const failureNote = join(root, 'install-failure.txt');
rmSync(failureNote, { force: true });

function say(message) {
  console.log(`adcorre-native: ${message}`);
}

function prebuildLoads() {
  const dir = join(root, 'prebuilds', platform);
  if (!existsSync(dir)) return false;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.node'))) {
    try {
      require(join(dir, file));
      say(`using the prebuilt binary prebuilds/${platform}/${file}`);
      return true;
    } catch (err) {
      say(`the prebuilt binary ${file} does not load here (${err.message.split('\n')[0]}); building from source`);
    }
  }
  return false;
}

function cmakeVersion(cmake) {
  const result = spawnSync(cmake, ['--version'], { encoding: 'utf8' });
  const match = /cmake version (\d+)\.(\d+)/.exec(result.stdout ?? '');
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

/** What a source build lacks on this machine, in words, or [] when it has all it needs. */
function missingTools() {
  const missing = [];
  const cmake = findProgram(['cmake']);
  if (!cmake) missing.push('cmake (>= 3.18) was not found on PATH');
  else {
    const version = cmakeVersion(cmake);
    if (version && (version[0] < 3 || (version[0] === 3 && version[1] < 18)))
      missing.push(`cmake ${version.join('.')} at ${cmake} is too old (3.18 or newer is needed)`);
  }
  if (process.platform !== 'win32') {
    const cxx = findProgram([process.env.CXX, 'c++', 'g++', 'clang++']);
    if (!cxx)
      missing.push(
        `no C++17 compiler was found (${process.env.CXX ? `CXX=${process.env.CXX}, ` : ''}c++, g++, clang++)`,
      );
  }
  return missing;
}

const fixCommand =
  process.platform === 'darwin'
    ? 'xcode-select --install && brew install cmake'
    : process.platform === 'win32'
      ? 'install CMake and Visual Studio 2019 or newer with "Desktop development with C++"'
      : 'sudo apt-get install cmake g++   (Fedora: sudo dnf install cmake gcc-c++; Alpine: apk add cmake g++ make)';

/** Ends the install: an error in a clone of the repository, a warning (exit 0) in an installed package. */
function cannotBuild(what) {
  const lines = [
    `the native addon (the Ad-Corre loss and the training engine) cannot be built: ${what}.`,
    checkout
      ? 'A clone of the repository always builds it from source.'
      : `No prebuilt binary in this package loads on ${platform} (prebuilt: linux-x64 with glibc).`,
    `To build it, install the tools, then rebuild:`,
    `  ${fixCommand}`,
    `  npm rebuild adcorre-native`,
    `(the CUDA kernels are compiled too when the CUDA toolkit's nvcc is found; ADCORRE_CUDA=OFF skips them).`,
  ];
  if (checkout) {
    console.error(lines.map((line, i) => (i === 0 ? `adcorre-native: ${line}` : line)).join('\n'));
    process.exit(1);
  }
  try {
    writeFileSync(failureNote, `${what}\n`);
  } catch {
    // a read-only package folder: the loader's error gives the same advice without the cause
  }
  lines.push(
    'Installed without it: inference (FER, adcorre-predict) works; adCorreLoss, the data loader and training',
    'will throw this advice when first used.',
  );
  console.warn(lines.map((line, i) => (i === 0 ? `adcorre-native: warning: ${line}` : line)).join('\n'));
  process.exit(0);
}

if (!checkout && process.env.ADCORRE_BUILD_FROM_SOURCE !== '1' && prebuildLoads()) process.exit(0);

const missing = missingTools();
if (missing.length) cannotBuild(missing.join('; '));

say(
  checkout
    ? 'compiling the native addon and its test programs (a clone of the repository)'
    : `compiling the native addon from source (no prebuilt binary for ${platform} loads here)`,
);
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const result = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  cannotBuild(
    `the compilation failed (exit status ${result.status ?? result.signal}; its output is above). ` +
      'It needs cmake >= 3.18 and a C++17 compiler (g++ >= 9, clang >= 10 or MSVC 2019)',
  );
}
