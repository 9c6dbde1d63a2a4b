// npm's install hook. A published package carries prebuilt binaries in
// prebuilds/: when one loads on this machine nothing is built. Otherwise (a
// clone of the repository, or a platform without a prebuild) the addon is
// compiled from source with cmake-js, with the CUDA kernels when nvcc is found.
// ADCORRE_BUILD_FROM_SOURCE=1 always builds.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function prebuildLoads() {
  const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!existsSync(dir)) return false;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.node'))) {
    try {
      require(join(dir, file));
      console.log(
        `adcorre-native: using the prebuilt binary ${join('prebuilds', `${process.platform}-${process.arch}`, file)}`,
      );
      return true;
    } catch (err) {
      console.warn(
        `adcorre-native: prebuilt ${file} does not load here (${err.message.split('\n')[0]}); building from source`,
      );
    }
  }
  return false;
}

if (process.env.ADCORRE_BUILD_FROM_SOURCE !== '1' && prebuildLoads()) process.exit(0);

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const result = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.error(
    '\nadcorre-native: building the native addon failed. It needs cmake >= 3.18 and a C++17 compiler ' +
      '(g++ >= 9, clang >= 10 or MSVC 2019); the CUDA kernels also need the CUDA toolkit (nvcc). ' +
      'Set ADCORRE_CUDA=OFF to build without CUDA.',
  );
  process.exit(result.status ?? 1);
}
