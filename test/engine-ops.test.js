// Runs the native checks of every engine operation (native/engine/ops_test.cpp):
// backward against finite differences in float64 (relative error <= 1e-6), and
// every operation in float (the training precision) against float64.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import test from 'ava';
import { backendInfo } from 'adcorre-native';
import { opTable } from 'adcorre-native/internal';

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

// Backend conformance (native/engine/backend_test.cpp): every op of the op
// table on every backend, the CPU against float64 (relative error <= 1e-5)
// and every other backend present (CUDA devices) against the CPU (<= 1e-4).
const backendBinary = new URL('../build/Release/adcorre_backend_test', import.meta.url).pathname;
const gpu = backendInfo().cuda;
test(`backend conformance: every op, the CPU against float64${gpu.usable ? ' and CUDA against the CPU' : ' (no usable CUDA GPU here: CPU only)'}`, async (t) => {
  if (!existsSync(backendBinary)) {
    t.fail(`${backendBinary} is missing: run npm run compile:native`);
    return;
  }
  const { stdout } = await promisify(execFile)(backendBinary);
  const lines = stdout.trim().split('\n');
  t.log(lines[0], '|', lines.at(-1));
  t.regex(stdout, /^\d+ passed, 0 failed$/m);
  t.notRegex(stdout, /FAIL/);
  // every op of the table has cases (the test prints "op <name>: N checks" per op)
  for (const { name } of opTable().ops) {
    const checks = Number(stdout.match(new RegExp(`^op ${name}: (\\d+) checks$`, 'm'))?.[1] ?? 0);
    t.true(checks > 0, `op ${name}: no conformance checks in backend_test`);
  }
  // every op ran on the CPU; where the addon sees a GPU, the conformance run must have used it
  t.regex(stdout, /^ok +cpu adcorre k7 n64 d64 C7 uniform attention gradient = float64/m);
  if (gpu.usable) t.regex(lines[0], /cuda:0/);
});
