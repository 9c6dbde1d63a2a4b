// Runs the native checks of every engine operation (native/engine/ops_test.cpp):
// backward against finite differences in float64 (relative error <= 1e-6), and
// every operation in float (the training precision) against float64.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import test from 'ava';
import { backendInfo } from '../dist/index.js';

const binary = new URL('../build/Release/adcorre_ops_test', import.meta.url).pathname;

// Every float GEMM kernel this CPU can run (ADCORRE_GEMM caps the choice):
// the one chosen by default, then AVX2 and the portable loops.
for (const cap of ['', 'avx2', 'portable']) {
  test(`engine operations: backward = finite differences (float64); float GEMM${cap ? ` capped at ${cap}` : ''}`, async (t) => {
    if (!existsSync(binary)) {
      t.fail(`${binary} is missing: run npm run compile:native`);
      return;
    }
    const env = { ...process.env, ADCORRE_GEMM: cap };
    const { stdout } = await promisify(execFile)(binary, { env });
    t.log(stdout.match(/^float gemm kernel: .*$/m)?.[0], '|', stdout.trim().split('\n').at(-1));
    t.regex(stdout, /^float gemm kernel: (avx512|avx2|portable)$/m);
    if (cap) t.notRegex(stdout, cap === 'portable' ? /kernel: avx/ : /kernel: avx512/);
    t.regex(stdout, /^\d+ passed, 0 failed$/m);
    t.notRegex(stdout, /FAIL/);
  });
}

const cudaBinary = new URL('../build/Release/adcorre_ops_cuda_test', import.meta.url).pathname;
const gpu = backendInfo().cuda;
const cudaWhy = !existsSync(cudaBinary)
  ? 'the addon was built without nvcc'
  : !gpu.usable
    ? `no usable CUDA GPU: ${gpu.error ?? 'none found'}`
    : '';
(cudaWhy ? test.skip : test)(
  `CUDA engine operations = CPU operations (relative error <= 1e-4)${cudaWhy ? ` (skipped: ${cudaWhy})` : ''}`,
  async (t) => {
    const { stdout } = await promisify(execFile)(cudaBinary);
    t.log(stdout.trim().split('\n').slice(0, 1).join(''), '|', stdout.trim().split('\n').at(-1));
    t.regex(stdout, /^\d+ passed, 0 failed$/m);
    t.notRegex(stdout, /FAIL|skipped/);
  },
);
