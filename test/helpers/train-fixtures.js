// The trainer tests' fixtures: a run folder of their own, the tiny architecture as a file, two small image
// folders, the options and flags that train them in seconds, and a way to watch an adcorre-train process.
import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin } from './cli.js';
import { tempDir, writeImageFolder } from './fixtures.js';
import { tiny } from './models.js';

/** A fresh folder with tiny.json and the image folders 'small' (21 training images) and 'larger' (210). */
export async function trainFixtures(prefix) {
  const dir = tempDir(prefix);
  const arch = join(dir, 'tiny.json');
  writeFileSync(arch, JSON.stringify(tiny));
  const dataset = (name, perTrain, perVal) =>
    writeImageFolder(join(dir, name), [
      ['train', perTrain],
      ['val', perVal],
    ]);
  // 21 training images: 2 steps an epoch of 8
  const data = await dataset('small', 3, 1);
  // 210: enough batches that the loader's worker threads still have batches out when a step fails
  const larger = await dataset('larger', 30, 2);
  const base = { data, arch: tiny, batch: 8, epochs: 1, seed: 3, workers: 0 };
  const cliBase = ['--data', data, '--arch', arch, '--batch', '8', '--seed', '3', '--workers', '0'];
  return { dir, arch, dataset, data, larger, base, cliBase };
}

export const runFiles = (out) => readdirSync(out).sort();
export const lockOf = (out) => join(out, 'train.lock');

/** Starts adcorre-train and resolves once its stderr matches `ready` (or it exits). */
export function start(args) {
  const child = spawn(process.execPath, [bin('adcorre-train'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const run = { child, stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (run.stdout += d));
  child.stderr.on('data', (d) => (run.stderr += d));
  run.exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  const deadline = setTimeout(() => child.kill('SIGKILL'), 120_000);
  run.exit.then(() => clearTimeout(deadline));
  run.until = (ready, limit = 60_000) =>
    new Promise((resolve) => {
      const end = Date.now() + limit;
      const check = () => {
        if (ready.test(run.stderr)) resolve(true);
        else if (child.exitCode !== null || child.signalCode !== null || Date.now() > end) resolve(false);
        else setTimeout(check, 20);
      };
      check();
    });
  return run;
}
