// adcorre-train's inputs: files that cannot be read (pipes, folders, oversized files) refused at once without
// leaving a lock, a resume on other data or with another teacher refused, and options that qualify one not given.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { buildArchitecture, exportOnnx, initWeights, labelNames } from 'adcorre-native';
import { OptionError, Trainer } from 'adcorre-native/internal';
import { cli, noStack } from './helpers/cli.js';
import { tempDir } from './helpers/fixtures.js';
import { tiny, untrainedModel } from './helpers/models.js';
import { lockOf, trainFixtures } from './helpers/train-fixtures.js';

const train = (args, timeout) => cli('adcorre-train', args, timeout);
const { dir, arch, data, larger, base, cliBase } = await trainFixtures('adcorre-train-inputs-');

test.serial('--init, --arch, --data and --teacher that cannot be read exit 2 at once, lock-free', async (t) => {
  const work = tempDir();
  const fifo = join(work, 'pipe.csv');
  spawnSync('mkfifo', [fifo]);
  const big = join(work, 'big.ckpt');
  writeFileSync(big, '');
  truncateSync(big, 3 * 2 ** 30); // sparse: no disk used
  const cases = [
    [['--init', fifo], /for --init but received a named pipe \(FIFO\): .*pipe\.csv$/],
    [['--init', '/dev/zero'], /for --init but received a character device: \/dev\/zero$/],
    [['--init', work], /Expected a checkpoint \(\.ckpt\) or model \(\.onnx\) file for --init but received a folder/],
    [['--init', big], /for --init but received a file of 3\.0 GiB, more than the 2\.0 GiB/],
    [['--arch', fifo], /Expected a preset or a JSON configuration file for --arch but received a named pipe/],
    [['--arch', '/dev/zero'], /for --arch but received a character device: \/dev\/zero$/],
    [['--teacher', fifo], /Expected an ONNX model file for --teacher but received a named pipe/],
  ];
  for (const [args, message] of cases) {
    const out = join(tempDir(), 'run');
    const withArch = args[0] === '--arch' ? cliBase.filter((_, i) => i !== 2 && i !== 3) : cliBase;
    const r = await train([...withArch, '--out', out, ...args]);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr.trim(), message);
    t.false(existsSync(lockOf(out)), 'no lock left');
    noStack(t, r.stderr);
  }
  const out = join(tempDir(), 'run');
  const r = await train(['--data', fifo, '--arch', arch, '--out', out]);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /Expected a dataset folder or CSV file for --data but received a named pipe \(FIFO\): .*pipe\.csv/);
  t.false(existsSync(lockOf(out)));
  // a named pipe where the run folder's lock goes: named, never waited on
  const locked = tempDir('adcorre-run-');
  spawnSync('mkfifo', [lockOf(locked)]);
  const pipeLock = await train([...cliBase, '--out', locked]);
  t.is(pipeLock.code, 1, pipeLock.stderr);
  t.regex(pipeLock.stderr, /lock .*train\.lock is a named pipe \(FIFO\), not a lock file: remove it/);
  // an --init that is a file but not a checkpoint: exit 2 as the help says, naming it
  const junk = join(work, 'junk.ckpt');
  writeFileSync(junk, 'not a checkpoint');
  const bad = await train([...cliBase, '--out', join(tempDir(), 'run'), '--init', junk]);
  t.is(bad.code, 2, bad.stderr);
  t.regex(bad.stderr, /for --init but received .*junk\.ckpt: checkpoint .*: not an adcorre-native checkpoint/);
});

test.serial('--resume on other data, with another teacher file or another --no-ema-warmup is refused', async (t) => {
  const out = tempDir('adcorre-run-');
  const first = await train([...cliBase, '--epochs', '2', '--max-steps', '1', '--out', out, '--ema', '0.9']);
  t.is(first.code, 0, first.stderr);
  const resume = (...extra) => train([...cliBase, '--epochs', '2', '--ema', '0.9', '--out', out, '--resume', ...extra]);
  const other = await resume('--data', larger);
  t.is(other.code, 2, other.stderr);
  t.regex(
    other.stderr,
    /Expected the run's data \(21 training and 7 validation images\) to resume .* for --data but received .*larger: 210 training and 14 validation images/,
  );
  const warmup = await resume('--no-ema-warmup');
  t.is(warmup.code, 2, warmup.stderr);
  t.regex(warmup.stderr, /Expected the run's warm-up \(on\) to resume .* for --no-ema-warmup but received off/);
  // the same data elsewhere (a copy) resumes
  const copy = join(tempDir(), 'copy');
  cpSync(data, copy, { recursive: true });
  const moved = await resume('--data', copy, '--max-steps', '2');
  t.is(moved.code, 0, moved.stderr);
  // a teacher: another file is refused, a copy of the same one is not
  const taught = tempDir('adcorre-run-');
  const teacher = join(tempDir(), 'teacher.onnx');
  writeFileSync(teacher, untrainedModel());
  const otherTeacher = join(tempDir(), 'teacher.onnx');
  writeFileSync(
    otherTeacher,
    exportOnnx(tiny, initWeights(buildArchitecture(tiny), 4), { labels: labelNames(7), training: { note: 'other' } }),
  );
  const start = await train([...cliBase, '--epochs', '2', '--max-steps', '1', '--out', taught, '--teacher', teacher]);
  t.is(start.code, 0, start.stderr);
  const swapped = await train([...cliBase, '--epochs', '2', '--out', taught, '--resume', '--teacher', otherTeacher]);
  t.is(swapped.code, 2, swapped.stderr);
  t.regex(swapped.stderr, /Expected the run's teacher model \(SHA-256 [0-9a-f]{12}\.\.\.\) to resume .* for --teacher/);
});

test('an option that qualifies one not given is refused, naming both', async (t) => {
  for (const [args, message] of [
    [['--mix-prob', '0.5'], /Expected mixup or cutmix above 0 .* for --mix-prob but received mixup 0 and cutmix 0/],
    [['--teacher-weight', '0.3'], /Expected a teacher for --teacher-weight but received no teacher/],
    [
      ['--plateau-patience', '3', '--schedule', 'cosine'],
      /Expected schedule 'plateau' for --plateau-patience but received schedule 'cosine'/,
    ],
    [['--momentum', '0.8'], /Expected optimizer 'sgd' .* for --momentum but received optimizer 'adam'/],
    [['--no-ema-warmup'], /Expected a weight average \(ema above 0\) for --no-ema-warmup but received ema 0/],
  ]) {
    const r = await train([...cliBase, '--out', join(tempDir(), 'run'), ...args]);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, message);
  }
  t.throws(() => new Trainer({ ...base, out: tempDir(), mixProb: 0.5 }), {
    instanceOf: OptionError,
    message: /for mixProb/,
  });
  t.notThrows(() => new Trainer({ ...base, out: tempDir(), mixup: 0.2, mixProb: 0.5 }));
});

test.after.always(() => rmSync(dir, { recursive: true, force: true }));
