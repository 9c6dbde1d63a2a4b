// adcorre-train's epoch lines: the time a run has taken in this process and about how long it has left.
import test from 'ava';
import { formatDuration, RunClock } from 'adcorre-native/internal';
import { cli } from './helpers/cli.js';
import { tempDir, writeImageFolder } from './helpers/fixtures.js';
import { tiny } from './helpers/models.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

test('durations: seconds, minutes and seconds, hours and minutes', (t) => {
  t.is(formatDuration(0), '0s');
  t.is(formatDuration(44.6), '45s');
  t.is(formatDuration(725), '12m05s');
  t.is(formatDuration(3600 * 4 + 600 + 29), '4h10m');
  t.is(formatDuration(-3), '0s');
});

test('time left: the epochs still to run at the mean pace of those run in this process', (t) => {
  // resumed half-way through epoch 3 (2.5 epochs done) at t = 0; epoch 4 ends 150 s later: 100 s an epoch
  const clock = new RunClock(2.5, 0);
  t.is(clock.describe(4, 10, 150_000), '2m30s so far, about 10m00s left');
  t.is(clock.describe(10, 10, 750_000), '12m30s so far', 'nothing left to estimate after the last epoch');
  t.is(new RunClock(0, 0).describe(1, 200, 90_000), '1m30s so far, about 4h58m left');
});

test('adcorre-train prints the learning rate and the time left after each epoch', async (t) => {
  const dir = tempDir('adcorre-run-clock-');
  const arch = join(dir, 'tiny.json');
  writeFileSync(arch, JSON.stringify(tiny));
  const data = await writeImageFolder(join(dir, 'data'), [
    ['train', 3],
    ['val', 1],
  ]);
  const r = await cli('adcorre-train', [
    '--data',
    data,
    '--arch',
    arch,
    '--batch',
    '8',
    '--epochs',
    '2',
    '--workers',
    '0',
    '--lr',
    '0.004',
    '--warmup',
    '0',
    '--schedule',
    'step',
    '--out',
    join(dir, 'run'),
  ]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /epoch 1: .* \| lr 4\.00e-3 \| \d+ img\/s \| \d+s so far, about \d+s left\n/);
  t.regex(r.stderr, /epoch 2: .* \| lr [0-9.]+e-\d \| \d+ img\/s \| \d+s so far\n/);
});
