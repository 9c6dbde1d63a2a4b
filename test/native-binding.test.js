// The native bindings: no JavaScript call may crash or abort the
// process. Each case runs in a child process (a segfault or an abort there
// fails the test instead of killing ava) and prints what it saw as JSON; the
// test asserts exit code 0 and the JavaScript errors expected.
import { execFile } from 'node:child_process';
import test from 'ava';

const dist = (path) => new URL(`../dist/${path}`, import.meta.url).href;
const addonDir = new URL('..', import.meta.url).pathname;

// Runs an ES module script under `node --expose-gc`; resolves with its exit code, signal and output.
function child(script, { timeout = 120_000 } = {}) {
  const prelude =
    `import { createRequire } from 'node:module';\n` +
    `const binding = createRequire(import.meta.url)('node-gyp-build')(${JSON.stringify(addonDir)});\n` +
    `const say = (o) => console.log(JSON.stringify(o));\n` +
    `const caught = (f) => { try { f(); return 'no error'; } catch (e) { return e.constructor.name + ': ' + e.message; } };\n`;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--expose-gc', '--input-type=module', '-e', prelude + script],
      { timeout, killSignal: 'SIGKILL', cwd: addonDir, maxBuffer: 1 << 24 },
      (err, stdout, stderr) =>
        resolve({ code: err ? err.code : 0, signal: err?.signal ?? null, stdout, stderr, out: lastJson(stdout) }),
    );
  });
}

function lastJson(stdout) {
  const lines = stdout.trim().split('\n').filter(Boolean);
  try {
    return JSON.parse(lines.at(-1));
  } catch {
    return undefined;
  }
}

function exitedCleanly(t, r) {
  t.is(r.signal, null, `killed by ${r.signal}: ${r.stderr.slice(-800)}`);
  t.is(r.code, 0, `exit code ${r.code}: ${r.stderr.slice(-800)}`);
}

// The data of #26 item 1: large enough that the buffers live in their own
// mappings, which the allocator unmaps when the transferred copy is collected.
const transferSetup = `
import { adCorreLoss, adCorreLossAsync } from ${JSON.stringify(dist('index.js'))};
const k = 7, n = 512, d = 512, numClasses = 7;
const fresh = () => {
  const e = new Float32Array(k * n * d);
  for (let i = 0; i < e.length; i++) e[i] = Math.sin(i * 0.37);
  return { e, l: Int32Array.from({ length: n }, (_, i) => (i * 5) % numClasses) };
};
const reference = (() => { const { e, l } = fresh(); return adCorreLoss(e, l, { k, d, numClasses, grad: true, device: 'cpu' }); })();
const collect = async () => { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); globalThis.gc(); };
const sameGrad = (g) => g.length === reference.grad.length && g.every((v, i) => v === reference.grad[i]);
`;

test('adCorreLossAsync: embeddings and labels transferred and collected mid-call: no crash, the loss of the values at call time', async (t) => {
  const r = await child(
    transferSetup +
      `
const results = [];
for (let i = 0; i < 3; i++) {
  const { e, l } = fresh();
  const p = adCorreLossAsync(e, l, { k, d, numClasses, grad: true, device: 'cpu' });
  p.catch(() => {});
  structuredClone(e, { transfer: [e.buffer] });
  structuredClone(l, { transfer: [l.buffer] });
  await collect();
  const got = await p;
  results.push({ detached: e.length === 0, same: got.loss === reference.loss, grad: sameGrad(got.grad) });
}
say(results);
`,
  );
  exitedCleanly(t, r);
  t.deepEqual(r.out, Array(3).fill({ detached: true, same: true, grad: true }));
});

test('adCorreLossAsync: gradOut transferred mid-call rejects naming gradOut; one left in place receives the gradient', async (t) => {
  const r = await child(
    transferSetup +
      `
const out = {};
{
  const { e, l } = fresh();
  const gradOut = new Float32Array(k * n * d);
  const p = adCorreLossAsync(e, l, { k, d, numClasses, gradOut, device: 'cpu' });
  p.catch(() => {});
  structuredClone(gradOut, { transfer: [gradOut.buffer] });
  structuredClone(e, { transfer: [e.buffer] });
  await collect();
  out.transferred = await p.then(() => 'resolved', (err) => err.message);
}
{
  const { e, l } = fresh();
  const gradOut = new Float32Array(k * n * d);
  const got = await adCorreLossAsync(e, l, { k, d, numClasses, gradOut, device: 'cpu' });
  out.kept = { same: got.grad === gradOut, grad: sameGrad(gradOut), loss: got.loss === reference.loss };
}
say(out);
`,
  );
  exitedCleanly(t, r);
  t.regex(
    r.out.transferred,
    /Expected gradOut of length k\*n\*d = 1835008 .* but received an array of length 0 \(detached/,
  );
  t.deepEqual(r.out.kept, { same: true, grad: true, loss: true });
});

test('numClasses 2147483647 and 1e6: no abort, no gigabytes; the loss depends only on the classes present', async (t) => {
  const r = await child(`
import { adCorreLoss } from ${JSON.stringify(dist('index.js'))};
const k = 2, d = 4;
const e = Float32Array.from({ length: k * 4 * d }, (_, i) => Math.cos(i));
const started = Date.now();
const huge = adCorreLoss(e, [0, 1, 2, 3], { k, d, numClasses: 2147483647, grad: true, device: 'cpu' });
const small = adCorreLoss(e, [0, 1, 2, 3], { k, d, numClasses: 4, grad: true, device: 'cpu' });
// attention from a million-class accuracy table equals the table of the classes present
const acc = new Float32Array(1e6).map((_, c) => (c * 0.618) % 1);
const million = adCorreLoss(e, [0, 999999, 5, 0], { k, d, numClasses: 1e6, classAccuracy: acc, grad: true, device: 'cpu' });
const compact = adCorreLoss(e, [0, 2, 1, 0], { k, d, numClasses: 3, classAccuracy: [acc[0], acc[5], acc[999999]], grad: true, device: 'cpu' });
say({
  ms: Date.now() - started,
  rssMiB: process.memoryUsage().rss / 2 ** 20,
  huge: huge.loss === small.loss && huge.grad.every((v, i) => v === small.grad[i]),
  million: million.loss === compact.loss && million.grad.every((v, i) => v === compact.grad[i]),
  finite: Number.isFinite(huge.loss) && Number.isFinite(million.loss),
  tooMany: caught(() => adCorreLoss(e, [0, 1, 2, 3], { k, d, numClasses: 2 ** 31 })),
});
`);
  exitedCleanly(t, r);
  t.true(r.out.huge);
  t.true(r.out.million);
  t.true(r.out.finite);
  t.true(r.out.ms < 5000, `${r.out.ms} ms`);
  t.true(r.out.rssMiB < 1024, `${r.out.rssMiB} MiB`);
  t.regex(r.out.tooMany, /^RangeError: Expected positive integer for options\.numClasses but received 2147483648/);
});

test('a C++ exception in the loss (std::bad_alloc under a memory limit) is a JavaScript error, not an abort', async (t) => {
  // The workspace of k 1, n 1024, d 32768 (about 1 GiB of doubles) cannot be
  // had under a limit of what the process already maps plus 512 MiB; the
  // 128 MiB input can.
  const probe = await child(`
import { adCorreLoss } from ${JSON.stringify(dist('index.js'))};
adCorreLoss(new Float32Array(8), [0, 1], { k: 1, d: 4, numClasses: 2, device: 'cpu' });
const kib = Number(/VmSize:\\s+(\\d+)/.exec((await import('node:fs')).readFileSync('/proc/self/status', 'utf8'))[1]);
say({ kib });
`);
  exitedCleanly(t, probe);
  const limit = probe.out.kib + 512 * 1024;
  const r = await new Promise((resolve) => {
    const script = `
import { adCorreLoss } from ${JSON.stringify(dist('index.js'))};
adCorreLoss(new Float32Array(8), [0, 1], { k: 1, d: 4, numClasses: 2, device: 'cpu' }); // the thread pool's threads exist
const k = 1, n = 1024, d = 32768;
const e = new Float32Array(k * n * d).fill(0.25);
for (let i = 0; i < e.length; i += 97) e[i] = 1;
let message;
try { adCorreLoss(e, Int32Array.from({ length: n }, (_, i) => i), { k, d, numClasses: n, device: 'cpu' }); message = 'no error'; }
catch (err) { message = err.constructor.name + ': ' + err.message; }
console.log(JSON.stringify({ message }));
`;
    execFile(
      '/bin/sh',
      ['-c', `ulimit -v ${limit} && exec "$0" --input-type=module -e "$1"`, process.execPath, script],
      { timeout: 120_000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) =>
        resolve({ code: err ? err.code : 0, signal: err?.signal ?? null, stdout, stderr, out: lastJson(stdout) }),
    );
  });
  exitedCleanly(t, r);
  // no error at all would mean the limit was generous enough for the workspace: still no abort
  t.log(r.out.message);
  t.regex(r.out.message, /^(Error: Out of memory in loss: |no error$)/);
});

test('the native loss reads every property before any array: a getter that detaches embeddings cannot make it read freed memory', async (t) => {
  const r = await child(`
const k = 7, n = 512, d = 512;
const request = () => ({
  embeddings: new Float32Array(k * n * d).fill(0.5),
  labels: Int32Array.from({ length: n }, (_, i) => i % 7),
  classAccuracy: null, k, n, d, numClasses: 7,
  weights: new Float64Array([1, 1, 1]), grad: true, device: 'cpu',
});
const detaching = (key) => {
  const r = request();
  const value = r[key];
  Object.defineProperty(r, key, { enumerable: true, get() {
    structuredClone(r.embeddings, { transfer: [r.embeddings.buffer] });
    globalThis.gc();
    return value;
  } });
  return r;
};
const out = {};
for (const key of ['labels', 'device', 'gradOut']) out[key] = caught(() => binding.loss(detaching(key)));
// a device with toString() (it would run JavaScript) is refused
out.toString = caught(() => binding.loss({ ...request(), device: { toString: () => 'cpu' } }));
// the asynchronous binding throws argument errors synchronously (the library's adCorreLossAsync rejects with them)
out.async = caught(() => binding.lossAsync(detaching('weights')));
say(out);
`);
  exitedCleanly(t, r);
  for (const key of ['labels', 'device', 'gradOut'])
    t.is(r.out[key], 'RangeError: Expected embeddings of length k*n*d', key);
  t.regex(r.out.toString, /^TypeError: Expected device 'cpu' or 'cuda'/);
  t.is(r.out.async, 'RangeError: Expected embeddings of length k*n*d');
});

test('warpAffine and resampleRgb: no JavaScript runs after the lengths are checked; oversized scratch is refused', async (t) => {
  const r = await child(`
const src = new Uint8Array(64 * 64 * 3), dst = new Float32Array(64 * 64 * 3);
const m = new Float64Array([1, 0, 0, 0, 1, 0]);
const evil = { valueOf() { structuredClone(src, { transfer: [src.buffer] }); globalThis.gc(); return 1; } };
say({
  warp: caught(() => binding.warpAffine(src, 64, 64, 3, dst, 0, 64, 64, 3, m, evil, 0)),
  warpOk: caught(() => binding.warpAffine(new Uint8Array(16), 4, 4, 1, new Float32Array(16), 0, 4, 4, 1, m, 1, 0)),
  resample: caught(() =>
    binding.resampleRgb(new Uint8Array(65536 * 3), 1, 65536, 0, 0, 1, 65536, new Float32Array(16384 * 3), 16384, 1, 0, 0, 1, 0),
  ),
});
`);
  exitedCleanly(t, r);
  t.is(r.out.warp, 'TypeError: Expected number for contrast');
  t.is(r.out.warpOk, 'no error');
  t.regex(r.out.resample, /^RangeError: Expected a resample needing at most 4 GiB of row scratch .* received sh 65536/);
});

test('the Engine binding: hand-made programs and mismatched arguments give JavaScript errors, not crashes', async (t) => {
  const r = await child(`
import { buildProgram } from ${JSON.stringify(dist('engine/engine.js'))};
import { buildArchitecture } from ${JSON.stringify(dist('model/architecture.js'))};
const config = { inputSize: 48, channels: 1, width: 0.0625, middleBlocks: 1, k: 2, d: 8, classes: 7 };
const good = buildProgram(buildArchitecture(config));
const copy = () => JSON.parse(JSON.stringify(good));
const make = (program, maxBatch = 4) => new binding.Engine(program, maxBatch, -1);
const conv = (p) => p.ops.find((o) => o.kind === 'conv');
const out = {};
out.stride0 = caught(() => { const p = copy(); conv(p).stride = 0; make(p); });
out.tensors = caught(() => { const p = copy(); p.tensors = 2147483647; make(p); });
out.paramSize = caught(() => { const p = copy(); p.paramSizes[conv(p).param] = 1; make(p); });
out.negative = caught(() => { const p = copy(); p.paramSizes[0] = -1; make(p); });
out.kernel = caught(() => { const p = copy(); conv(p).kernel = 4096; conv(p).padding = 'valid'; make(p); });
// each op's fields as the op table lists them: typed, in range, fitting the input
out.padding = caught(() => { const p = copy(); conv(p).padding = 'full'; make(p); });
out.inC = caught(() => { const p = copy(); conv(p).inC = 2; make(p); });
out.noInF = caught(() => { const p = copy(); delete p.ops.find((o) => o.kind === 'dense').inF; make(p); });
out.rate = caught(() => { const p = copy(); p.ops.find((o) => o.kind === 'dropout').rate = 1; make(p); });
out.maxBatch = caught(() => make(copy(), 2 ** 32 + 1));
out.hugeBatch = caught(() => make(copy(), 2147483647));
const engine = make(good);
const images = new Float32Array(2 * 48 * 48).fill(0.5);
out.predictClasses = caught(() => engine.predict(images, 2, 3, 16));
out.predictShort = caught(() => engine.predict(images.subarray(0, 10), 2, 7, 16));
// the binding takes every step option (lib/engine/engine.ts fills the defaults)
const step = { lambdaCE: 1, wFD: 1, wMD: 1, wED: 1, adcorre: true, optimizer: 'adam', lr: 1e-3, momentum: 0.9, nesterov: false, weightDecay: 0, bnMomentum: 0.99, seed: 0 };
out.stepMissing = caught(() => engine.trainStep(images, Int32Array.of(0, 1), { ...step, bnMomentum: undefined }));
out.stepShort = caught(() => engine.trainStep(images.subarray(0, 48 * 48 + 1), Int32Array.of(0, 1), step));
out.stepAccuracy = caught(() => engine.trainStep(images, Int32Array.of(0, 1), { ...step, classAccuracy: new Float32Array(1) }));
const detach = { ...step };
Object.defineProperty(detach, 'lr', { enumerable: true, get() { structuredClone(images, { transfer: [images.buffer] }); globalThis.gc(); return 1e-3; } });
out.stepGetter = caught(() => engine.trainStep(images, Int32Array.of(0, 1), detach));
out.param = caught(() => engine.getParam(NaN));
out.ok = caught(() => engine.predict(new Float32Array(48 * 48), 1, 7, 16));
say(out);
`);
  exitedCleanly(t, r);
  const o = r.out;
  t.regex(o.stride0, /^RangeError: program: Expected integer in \[1, 65536\] for stride of .* but received 0/);
  t.regex(o.tensors, /^RangeError: program: Expected integer in \[1, \d+\] for tensors/);
  t.regex(o.paramSize, /^RangeError: program: Expected paramSizes\[\d+\] = \d+ for .* but received 1/);
  t.regex(o.negative, /^RangeError: program: Expected paramSizes\[0\] in \[1, 2147483647\] but received -1/);
  t.regex(o.kernel, /^RangeError: input too small for the network/);
  t.regex(o.padding, /^TypeError: program: Expected 'valid' or 'same' for padding of .* but received 'full'/);
  t.regex(o.inC, /^RangeError: Expected inC = the input's channels \(1\) for .* but received 2/);
  t.regex(
    o.noInF,
    /^RangeError: program: Expected integer in \[1, 2147483647\] for inF of head0 but received a non-number/,
  );
  t.regex(o.rate, /^RangeError: program: Expected a number in \[0, 1\) for rate of .* but received 1/);
  t.regex(o.maxBatch, /^RangeError: Expected integer in \[1, 2147483647\] for maxBatch but received 4294967297/);
  t.regex(o.hugeBatch, /^Error: Out of memory on cpu: the training engine needs [\d.]+ MiB for batches of 2147483647/);
  t.regex(o.predictClasses, /^RangeError: Expected integer in \[7, 7\] for classes but received 3/);
  t.regex(o.predictShort, /^RangeError: Expected images of length .* = 4608 but received 10/);
  t.regex(o.stepMissing, /^TypeError: Expected a number for options.bnMomentum but received undefined/);
  t.regex(o.stepShort, /^RangeError: Expected images of length .* = 4608 but received 2305/);
  t.regex(o.stepAccuracy, /^RangeError: Expected classAccuracy of length classes = 7/);
  t.regex(o.stepGetter, /^RangeError: Expected images of length .* = 4608 but received 0/);
  t.regex(o.param, /^RangeError: Expected integer in \[0, \d+\] for parameter index/);
  t.is(o.ok, 'no error');
});

test('a CPU loss whose workspace exceeds the machine is refused up front, naming the sizes', async (t) => {
  const r = await child(`
import { totalmem } from 'node:os';
import { adCorreLoss } from ${JSON.stringify(dist('index.js'))};
// k*n*d just under 2^31 with every sample its own class: about 95 GB of workspace
const n = 65536, d = 32767;
const labels = Int32Array.from({ length: n }, (_, i) => i);
say({ gib: totalmem() / 2 ** 30, message: caught(() => adCorreLoss(new Float32Array(1), labels, { k: 1, d, numClasses: n, device: 'cpu' })) });
`);
  exitedCleanly(t, r);
  if (r.out.gib > 90) return t.pass('this machine has the memory: nothing to refuse');
  t.regex(
    r.out.message,
    /^RangeError: Expected a batch whose loss fits in this machine's [\d.]+ GiB of memory for embeddings but received k\*n\*d = 1\*65536\*32767 with 65536 classes present, needing [\d.]+ GiB/,
  );
});

// An addon built from older sources (a clone pulled but not rebuilt) lacks newer exports; the loader
// names them and says what to run instead of failing later with "x is not a function".
test('the loader finds exports missing from an out-of-date addon', async (t) => {
  const { missingBindings } = await import(dist('native.js'));
  const { createRequire } = await import('node:module');
  const addon = createRequire(import.meta.url)('node-gyp-build')(addonDir);
  t.deepEqual(missingBindings(addon), [], 'the addon built from these sources has every export');
  const stale = { ...addon };
  delete stale.opTable;
  stale.windowGeometry = 1;
  t.deepEqual(missingBindings(stale), ['opTable', 'windowGeometry']);
  // an Engine class from before a method existed
  class OldEngine {}
  for (const m of Object.getOwnPropertyNames(addon.Engine.prototype)) {
    const d = Object.getOwnPropertyDescriptor(addon.Engine.prototype, m);
    if (m !== 'trainStepAsync' && m !== 'constructor') Object.defineProperty(OldEngine.prototype, m, d);
  }
  t.deepEqual(missingBindings({ ...addon, Engine: OldEngine }), ['Engine.trainStepAsync']);
});
