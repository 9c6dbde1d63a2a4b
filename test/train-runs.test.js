// The trainer's runs, each failure reproduced and checked:
// 5. run folders are protected: a folder that holds a run is refused without
//    --resume or --force, and a folder in use by another trainer is locked;
// 7. a training error prints its cause and exits with its documented code
//    (it used to end with Node's code 13, "unsettled top-level await", and
//    nothing printed), also through the API with nothing else keeping the
//    process alive;
// 10. a NaN model never counts as trained: NaN starting weights are refused,
//    runs of non-finite steps stop the run, exports are finite, and a loss
//    that grows by orders of magnitude is reported.
import { execFile, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
  writeSync,
  copyFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import onnxProto from 'onnx-proto';
import { buildArchitecture, exportOnnx, initWeights, labelNames } from 'adcorre-native';
import { readCheckpoint, writeCheckpoint } from 'adcorre-native/internal';
import { appendJsonLine } from 'adcorre-native/internal';
import { Trainer } from 'adcorre-native/internal';
import { OptionError } from 'adcorre-native/internal';
import { cli, noStack } from './helpers/cli.js';
import { lockOf, runFiles, start, trainFixtures } from './helpers/train-fixtures.js';
import { tempDir } from './helpers/fixtures.js';
import { tiny, untrainedModel } from './helpers/models.js';

const { onnx } = onnxProto;
const trainerModule = new URL('../dist/train/trainer.js', import.meta.url).href;
const train = (args, timeout) => cli('adcorre-train', args, timeout);

const { dir, larger, base, cliBase } = await trainFixtures('adcorre-train-runs-');
// an effectively infinite cross-entropy weight: every step's gradient overflows, whatever the weights
const overflow = '1e39';

// --- 5. run folders are protected ---

test.serial('a new run refuses a folder that holds a run, naming --resume and --force (exit 2)', async (t) => {
  const out = tempDir('adcorre-run-');
  await new Trainer({ ...base, out }).train();
  const before = readFileSync(join(out, 'last.ckpt'));
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8');
  await t.throwsAsync(() => new Trainer({ ...base, out }).train(), {
    instanceOf: OptionError,
    message:
      /Expected a run folder that holds no run yet for out but received .*: it holds a run \(last\.ckpt, best\.ckpt, model\.onnx, metrics\.jsonl, summary\.json\); continue it with --resume, or start over with --force/,
  });
  const r = await train([...cliBase, '--epochs', '1', '--out', out]);
  t.is(r.code, 2, r.stderr);
  t.regex(
    r.stderr,
    /^adcorre-train: Expected a run folder that holds no run yet for --out but received .*--resume.*--force/,
  );
  noStack(t, r.stderr);
  t.deepEqual(readFileSync(join(out, 'last.ckpt')), before, 'last.ckpt untouched');
  t.is(readFileSync(join(out, 'metrics.jsonl'), 'utf8'), metrics, 'metrics.jsonl untouched');
  t.false(existsSync(lockOf(out)));
  // a folder where a run failed before its first checkpoint (config.json only) holds no run: it can be reused
  const early = tempDir('adcorre-run-');
  writeFileSync(join(early, 'config.json'), '{}');
  await t.notThrowsAsync(() => new Trainer({ ...base, out: early, maxSteps: 1 }).train());
});

test.serial("--force starts over: the old run's files are deleted first, nothing else", async (t) => {
  const out = tempDir('adcorre-run-');
  await new Trainer({ ...base, out }).train();
  writeFileSync(join(out, 'notes.txt'), 'mine');
  writeFileSync(join(out, '.last.ckpt.123.456.tmp'), 'a temporary file left by a crash');
  // stops before the end of its first epoch: the old run's model and metrics must not be reported as its own
  const summary = await new Trainer({ ...base, out, force: true, maxSteps: 1 }).train();
  t.is(summary.model, null);
  t.deepEqual(runFiles(out), ['config.json', 'last.ckpt', 'notes.txt', 'summary.json']);
  t.is(readCheckpoint(join(out, 'last.ckpt')).meta.step, 1);
  const r = await train([...cliBase, '--epochs', '1', '--out', out, '--force']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^done: 2 steps/);
  t.is(readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 1);
  // --force and --resume contradict each other
  t.throws(() => new Trainer({ ...base, out, force: true, resume: true }), {
    instanceOf: OptionError,
    message: /Expected either force \(start over\) or resume \(continue the run\), not both for force/,
  });
  const both = await train([...cliBase, '--out', out, '--force', '--resume']);
  t.is(both.code, 2, both.stderr);
  t.regex(both.stderr, /for --force but received both/);
});

test.serial(
  'a run folder in use is locked; the lock goes on every way out (done, error, SIGINT, SIGTERM)',
  async (t) => {
    const out = tempDir('adcorre-run-');
    const a = start([...cliBase, '--epochs', '1000', '--out', out]);
    t.true(await a.until(/epoch 1\/1000 batch/), a.stderr);
    const lock = JSON.parse(readFileSync(lockOf(out), 'utf8'));
    t.like(lock, { pid: a.child.pid, hostname: hostname() });
    t.false(Number.isNaN(Date.parse(lock.started)));
    // a second trainer, whatever it asks for, is refused and touches nothing (--force must not delete a live run)
    for (const extra of [[], ['--resume'], ['--force']]) {
      const b = await train([...cliBase, '--epochs', '1000', '--out', out, ...extra]);
      t.is(b.code, 2, b.stderr);
      t.regex(
        b.stderr,
        new RegExp(
          `Expected a run folder that no other trainer is using for --out but received .*: process ${a.child.pid} has been training there since`,
        ),
      );
      noStack(t, b.stderr);
    }
    t.true(existsSync(join(out, 'config.json')));
    a.child.kill('SIGINT');
    t.is(await a.exit, 130, a.stderr);
    t.false(existsSync(lockOf(out)), 'SIGINT');
    t.false(/done/.test(a.stdout));

    const term = start([...cliBase, '--epochs', '1000', '--out', out, '--resume']);
    t.true(await term.until(/epoch \d+\/1000 batch/), term.stderr);
    term.child.kill('SIGTERM');
    t.is(await term.exit, 130, term.stderr);
    t.false(existsSync(lockOf(out)), 'SIGTERM');

    // a second Ctrl-C exits at once (process.exit): the lock still goes
    const twice = start([...cliBase, '--epochs', '1000', '--out', out, '--resume']);
    t.true(await twice.until(/epoch \d+\/1000 batch/), twice.stderr);
    twice.child.kill('SIGINT');
    twice.child.kill('SIGINT');
    t.is(await twice.exit, 130, twice.stderr);
    t.false(existsSync(lockOf(out)), 'two SIGINTs');

    // the API: after a normal return and after an error
    const api = tempDir('adcorre-run-');
    await new Trainer({ ...base, out: api, maxSteps: 1 }).train();
    t.false(existsSync(lockOf(api)), 'returned');
    await t.throwsAsync(() => new Trainer({ ...base, out: api, batch: 4, resume: true }).train(), {
      message: /the run's batch size, 8/,
    });
    t.false(existsSync(lockOf(api)), 'refused resume');
    // two trainers started at once on one folder: exactly one runs
    const both = tempDir('adcorre-run-');
    const results = await Promise.allSettled([
      new Trainer({ ...base, out: both, maxSteps: 1 }).train(),
      new Trainer({ ...base, out: both, maxSteps: 1 }).train(),
    ]);
    t.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    t.regex(results.find((r) => r.status === 'rejected').reason.message, /another Trainer in this process/);
    t.false(existsSync(lockOf(both)));
  },
);

test.serial(
  "a resume with another recipe than the run's is refused, naming the option; --epochs may change",
  async (t) => {
    const out = tempDir('adcorre-run-');
    const first = await train([...cliBase, '--epochs', '2', '--max-steps', '1', '--out', out, '--lr', '0.004']);
    t.is(first.code, 0, first.stderr);
    const resume = (...extra) => train([...cliBase, '--out', out, '--resume', '--lr', '0.004', ...extra]);
    const other = await resume('--epochs', '2', '--jpeg', '0.5');
    t.is(other.code, 2, other.stderr);
    t.regex(
      other.stderr,
      /adcorre-train: Expected the run's value, 0, to resume .* \(a resume continues the run as it was started\) for --jpeg but received 0\.5/,
    );
    await t.throwsAsync(() => new Trainer({ ...base, flipAverage: true, out, resume: true, epochs: 2 }).train(), {
      instanceOf: OptionError,
      message: /Expected the run's value, 0\.004, .* for lr but received 0\.002/,
    });
    const longer = await resume('--epochs', '3', '--max-steps', '3');
    t.is(longer.code, 0, longer.stderr);
    // a teacher added on resume would distil from the middle of a run that had none
    const teacher = join(tempDir(), 'teacher.onnx');
    writeFileSync(teacher, untrainedModel());
    const taught = await resume('--epochs', '3', '--teacher', teacher);
    t.is(taught.code, 2, taught.stderr);
    t.regex(
      taught.stderr,
      /Expected no teacher, as the run had none, to resume .* for --teacher but received .*teacher\.onnx/,
    );
  },
);

test.serial("a stale lock is taken over; another host's is refused with a way out", async (t) => {
  const out = tempDir('adcorre-run-');
  const gone = spawnSync(process.execPath, ['-e', '']).pid; // a process that has exited
  const stale = { pid: gone, hostname: hostname(), started: new Date(Date.now() - 60_000).toISOString(), token: 'x' };
  writeFileSync(lockOf(out), JSON.stringify(stale));
  const r = await train([...cliBase, '--epochs', '1', '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.false(existsSync(lockOf(out)));
  // a lock with this very process's PID that it does not hold: a dead predecessor's (PIDs repeat in containers)
  writeFileSync(lockOf(out), JSON.stringify({ ...stale, pid: process.pid }));
  // (adcorre-train flip-averages by default, and a resume needs the run's configuration)
  await t.notThrowsAsync(() => new Trainer({ ...base, flipAverage: true, out, resume: true, epochs: 2 }).train());
  // a damaged lock file, old enough not to be one being written
  writeFileSync(lockOf(out), 'garbage');
  utimesSync(lockOf(out), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  await t.notThrowsAsync(() => new Trainer({ ...base, flipAverage: true, out, resume: true, epochs: 3 }).train());
  t.false(existsSync(lockOf(out)));
  t.deepEqual(
    readdirSync(out).filter((f) => f.includes('lock')),
    [],
    'no lock copies left aside',
  );
  // a process on another machine (a shared file system) cannot be checked from here
  writeFileSync(lockOf(out), JSON.stringify({ ...stale, hostname: 'elsewhere\u001b[2J' }));
  const other = await train([...cliBase, '--epochs', '4', '--out', out, '--resume']);
  t.is(other.code, 2, other.stderr);
  t.regex(
    other.stderr,
    /process \d+ on elsewhere\\e\[2J has been training there since .*; wait for it to finish or stop it, or choose another run folder \(if that trainer no longer runs, delete .*train\.lock\)/,
  );
  t.true(existsSync(lockOf(out)), "another host's lock is left alone");
});

// --- 7. failures print their cause and exit with their code, never 13 ---

test.serial('--on-nan stop prints its cause and exits 1 (was: exit 13, nothing printed)', async (t) => {
  for (let i = 0; i < 2; i++) {
    const out = tempDir('adcorre-run-');
    const r = await train([
      ...cliBase,
      '--data',
      larger,
      '--workers',
      '2',
      '--epochs',
      '2',
      '--out',
      out,
      '--lambda-ce',
      overflow,
      '--on-nan',
      'stop',
    ]);
    t.is(r.code, 1, r.stderr);
    t.regex(
      r.stderr,
      /adcorre-train: Non-finite loss or gradient at step 1 \(first bad layer: .+\); stopping, as --on-nan stop asks\n$/,
    );
    noStack(t, r.stderr);
    t.false(existsSync(lockOf(out)));
  }
});

test.serial('Trainer.train() rejects with the cause when nothing else keeps the process alive', async (t) => {
  const out = tempDir('adcorre-run-');
  const options = { ...base, data: larger, workers: 2, epochs: 2, out, lambdaCE: 1e39, onNonFinite: 'stop' };
  // the child does nothing but await train(): its event loop holds only what the trainer holds
  const script = `
    import { Trainer } from ${JSON.stringify(trainerModule)};
    try {
      await new Trainer(${JSON.stringify(options)}).train();
      console.log('resolved');
    } catch (err) {
      console.log('rejected: ' + err.message);
    }`;
  // a file, not -e: the loader's worker threads inherit the process's execArgv
  const file = join(dir, 'await-train.mjs');
  writeFileSync(file, script);
  const r = await promisify(execFile)(process.execPath, [file], {
    timeout: 60_000,
  }).then(
    (x) => ({ code: 0, ...x }),
    (e) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
  t.is(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  t.regex(r.stdout, /^rejected: Non-finite loss or gradient at step 1/);
});

test.serial('the exit codes are in --help', async (t) => {
  const r = await train(['--help']);
  t.is(r.code, 0);
  t.regex(r.stdout, /Exit status:\n\s+0\s+done.*\n\s+1\s+training failed: the cause is printed/);
  t.regex(r.stdout, /\n\s+2\s+usage: .*\n.*\n\s+130\s+interrupted by Ctrl-C or SIGTERM/);
  t.regex(r.stdout, /--force/);
  t.regex(r.stdout, /--max-nan-steps <n>/);
});

const mountTmpfs = (mount, size) =>
  spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mount], { encoding: 'utf8' });
const canMount = (() => {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return 'not root on Linux';
  const probe = tempDir('adcorre-tmpfs-probe-');
  const r = mountTmpfs(probe, '1m');
  if (r.status !== 0) return `mount -t tmpfs failed: ${(r.stderr || r.error?.message || '').trim()}`;
  spawnSync('umount', [probe]);
  return true;
})();
if (canMount !== true) console.log(`disk-full test skipped: it mounts a small tmpfs as root (${canMount})`);

(canMount === true ? test.serial : test.serial.skip)(
  '7. a disk that fills during the run: exit 1 with the cause, the last checkpoint intact, --resume continues',
  async (t) => {
    const mount = tempDir('adcorre-tmpfs-');
    // the tiny model's up-front estimate is about 18 MiB: the run starts, then the test fills the rest
    t.is(mountTmpfs(mount, '24m').status, 0);
    t.teardown(() => spawnSync('umount', ['-l', mount]));
    const out = join(mount, 'run');
    // worker threads with batches out when the write fails: the case that ended with exit 13 and nothing printed
    const args = [...cliBase, '--data', larger, '--workers', '2', '--epochs', '1000', '--out', out];
    const run = start([...args, '--checkpoint-every', '1']);
    if (!(await run.until(/epoch 1\/1000 batch 4\//))) {
      run.child.kill('SIGKILL');
      t.fail(`the run did not start: ${run.stderr}`);
      return;
    }
    const filler = join(mount, 'filler');
    const fd = openSync(filler, 'w');
    const chunk = Buffer.alloc(1 << 16, 1);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (err) {
      t.is(err.code, 'ENOSPC');
    }
    try {
      for (;;) writeSync(fd, chunk, 0, 512);
    } catch {
      // full to the last block
    }
    closeSync(fd);
    const code = await run.exit;
    t.is(code, 1, run.stderr);
    t.regex(
      run.stderr,
      /adcorre-train: Cannot write the \w+ .*: no space left on the device \(ENOSPC\); the last checkpoint, .*last\.ckpt, is intact: free some space, then continue with --resume\n$/,
    );
    noStack(t, run.stderr);
    const saved = readCheckpoint(join(out, 'last.ckpt'));
    t.true(saved.meta.step >= 2);
    t.false(existsSync(lockOf(out)));
    t.deepEqual(
      readdirSync(out).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary files left',
    );
    // a metrics line cut short by the full disk is undone, not left as half a line
    const metrics = join(out, 'metrics.jsonl');
    const before = existsSync(metrics) ? readFileSync(metrics, 'utf8') : '';
    t.throws(() => appendJsonLine(metrics, { big: 'x'.repeat(1 << 20) }), { code: 'ENOSPC' });
    t.is(existsSync(metrics) ? readFileSync(metrics, 'utf8') : '', before);
    // with space again, the run continues where its checkpoint left it
    rmSync(filler);
    const resumed = await train([...args, '--resume', '--max-steps', String(saved.meta.step + 2)]);
    t.is(resumed.code, 0, resumed.stderr);
    t.regex(resumed.stderr, new RegExp(`resuming at step ${saved.meta.step}`));
    t.regex(resumed.stdout, new RegExp(`^interrupted: ${saved.meta.step + 2} steps`));
  },
);

test.serial('a resumed run rewrites metrics.jsonl from its checkpoint: no epoch listed twice', async (t) => {
  const out = tempDir('adcorre-run-');
  await new Trainer({ ...base, out }).train();
  const epoch1 = join(dir, 'epoch1.ckpt');
  copyFileSync(join(out, 'last.ckpt'), epoch1);
  await new Trainer({ ...base, out, epochs: 2, resume: true }).train();
  // a stop between epoch 2's metrics line and its checkpoint: the folder's checkpoint is still epoch 1's
  copyFileSync(epoch1, join(out, 'last.ckpt'));
  writeFileSync(join(out, 'metrics.jsonl'), `${readFileSync(join(out, 'metrics.jsonl'), 'utf8')}{"epoch": 3, "tr`);
  await new Trainer({ ...base, out, epochs: 2, resume: true }).train();
  const epochs = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).epoch);
  t.deepEqual(epochs, [1, 2]);
});

// --- 10. a NaN model never counts as trained ---

/** A tiny model whose first convolution is all NaN (exportOnnx refuses such weights now, so they are put in after). */
function nanModel(path) {
  const model = onnx.ModelProto.decode(
    exportOnnx(tiny, initWeights(buildArchitecture(tiny), 3), { labels: labelNames(7) }),
  );
  const weight = model.graph.initializer.find((i) => i.name.endsWith('.weight'));
  weight.rawData = new Uint8Array(new Float32Array(weight.rawData.length / 4).fill(Number.NaN).buffer);
  writeFileSync(path, onnx.ModelProto.encode(model).finish());
  return { path, parameter: weight.name };
}

test.serial('--init with NaN weights is refused (exit 2) instead of exporting a NaN model', async (t) => {
  const { path, parameter } = nanModel(join(dir, 'nan.onnx'));
  const out = tempDir('adcorre-run-');
  const r = await train([...cliBase, '--epochs', '1', '--out', out, '--init', path]);
  t.is(r.code, 2, r.stderr);
  t.regex(
    r.stderr,
    new RegExp(
      `^adcorre-train: Expected a checkpoint or model with finite weights for --init but received .*nan\\.onnx: parameter ${parameter.replace(/\./g, '\\.')}: \\d+ of its \\d+ values are NaN or infinite; training cannot start from it\\n$`,
    ),
  );
  noStack(t, r.stderr);
  t.false(existsSync(join(out, 'model.onnx')));
  t.false(existsSync(lockOf(out)));
});

test.serial('NaN weights met during a run (a resumed checkpoint) stop it at the first step', async (t) => {
  const out = tempDir('adcorre-run-');
  await new Trainer({ ...base, out, maxSteps: 1 }).train();
  const last = join(out, 'last.ckpt');
  const { state, meta } = readCheckpoint(last);
  const [name, w] = [...state.weights].find(([n]) => n.endsWith('.weight'));
  w[0] = Number.POSITIVE_INFINITY;
  writeCheckpoint(last, state, meta);
  await t.throwsAsync(() => new Trainer({ ...base, out, epochs: 2, resume: true }).train(), {
    message: new RegExp(
      `^The weights hold NaN or infinite values \\(parameter ${name.replace(/\./g, '\\.')}: 1 of its \\d+ values\\) at step 2: every step fails and skipping cannot mend them`,
    ),
  });
  t.false(existsSync(join(out, 'model.onnx')));
});

test.serial('too many non-finite steps in a row stop the run with the cause (exit 1)', async (t) => {
  const out = tempDir('adcorre-run-');
  await t.throwsAsync(() => new Trainer({ ...base, out, epochs: 10, lambdaCE: 1e39, maxNonFiniteSteps: 3 }).train(), {
    message:
      /^3 steps in a row \(steps 1 to 3\) had a non-finite loss or gradient \(first bad layer: .+\): the run no longer trains\. Lower the learning rate/,
  });
  // its first epoch skipped every step: it is no model of this run
  t.false(existsSync(join(out, 'model.onnx')), 'nothing exported');
  const cliOut = tempDir('adcorre-run-');
  const r = await train([...cliBase, '--epochs', '50', '--out', cliOut, '--lambda-ce', overflow]);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /adcorre-train: 20 steps in a row \(steps 1 to 20\) had a non-finite loss or gradient/);
  t.regex(r.stderr, /--max-nan-steps sets how many in a row are tolerated\n$/);
  noStack(t, r.stderr);
  t.false(existsSync(join(cliOut, 'model.onnx')));
  // isolated non-finite steps are still skipped and counted
  t.throws(() => new Trainer({ ...base, out, maxNonFiniteSteps: 0 }), {
    instanceOf: OptionError,
    message: /positive integer for maxNonFiniteSteps but received 0/,
  });
});

test.serial('exportOnnx refuses NaN or infinite weights, naming the parameter', (t) => {
  const weights = initWeights(buildArchitecture(tiny), 3);
  const [name, w] = [...weights].find(([n]) => n.endsWith('.weight'));
  w[1] = Number.NaN;
  w[2] = Number.NEGATIVE_INFINITY;
  t.throws(() => exportOnnx(tiny, weights, { labels: labelNames(7) }), {
    instanceOf: RangeError,
    message: new RegExp(
      `^Expected finite weights but received 2 NaN or infinite values of \\d+ in parameter ${name.replace(/\./g, '\\.')}: such a model predicts NaN`,
    ),
  });
  const good = initWeights(buildArchitecture(tiny), 4);
  t.throws(() => exportOnnx(tiny, [good, weights], { labels: labelNames(7) }), {
    message: /finite weights for ensemble member 1 but received 2/,
  });
});

test.serial('a loss that grows by orders of magnitude is reported; a sound run reports nothing', async (t) => {
  const diverging = { ...base, optimizer: 'sgd', lr: 10, schedule: 'decay', warmup: 0, epochs: 4 };
  const warnings = [];
  const summary = await new Trainer({ ...diverging, out: tempDir('adcorre-run-') }).train(
    (e) => e.phase === 'warning' && warnings.push(e.warning),
  );
  t.true(warnings.length >= 2, warnings.join('\n')); // 10 times, then 100 times
  t.regex(
    warnings[0],
    /^the training loss has grown \d+ times, from [\d.]+ to [\d.e+]+ \(averaged over steps\), by step \d+: the run is diverging; a lower learning rate \(--lr, now 10\) usually helps$/,
  );
  t.deepEqual(summary.warnings, warnings);
  const r = await train([
    ...cliBase,
    '--epochs',
    '4',
    '--out',
    tempDir('adcorre-run-'),
    '--optimizer',
    'sgd',
    '--lr',
    '10',
    '--schedule',
    'decay',
    '--warmup',
    '0',
  ]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /adcorre-train: warning: the training loss has grown \d+ times/);
  t.regex(r.stdout, /warnings:\n {2}the training loss has grown/);
  const sound = await new Trainer({ ...base, epochs: 3, lr: 3e-3, out: tempDir('adcorre-run-') }).train();
  t.deepEqual(sound.warnings, []);
  t.is(sound.nonFiniteSteps, 0);
});

test.after.always(() => rmSync(dir, { recursive: true, force: true }));
