#!/usr/bin/env node
// Performer cross-validation on labelled photos (issue: select on real photos by performer, never on one small
// split). The photos' performers, read from their file names, are cut into folds of consecutive performers
// (15 performers, 3 folds: 01-05, 06-10, 11-15); for each fold a model is fine-tuned on the other folds' aligned
// crops (with the rows of --mix, e.g. FER-2013's, if given) and measured through the whole pipeline (detect,
// align, classify: adcorre-eval --pipeline) on the fold's own photos, which it never saw. The summary is the mean
// and spread over the folds. With --eval-only, --model itself is measured on each fold (a model that never
// trained on these photos): the same folds, so the two read side by side.
//
//   node scripts/posed-cv.js --data ../shared/data/posed-dev --model models/adcorre-fer2013.onnx --out runs/cv \
//     [--folds 3] [--performer '^(\d\d)'] [--mix mix.csv] [--repeat 10] [--eval-only] [-- <adcorre-train options>]
//
// Each step is one of the project's commands, run as a child process (no shell); a fold whose result is in
// --out already (fold-<i>/result.json) is not run again, so an interrupted run continues where it stopped.
// The fold's model is its run's last epoch (adcorre-export last.ckpt): choosing an epoch on the fold's own
// photos would make its score optimistic, and the training rows hold nothing else of these performers.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { csvField } from '../dist/data/csv.js';
import { writeFileAtomic } from '../dist/io.js';
import { printable } from '../dist/terminal.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const usage =
  "usage: node scripts/posed-cv.js --data <photos> --model <model.onnx> --out <dir> [--folds 3] [--performer '^(\\d\\d)'] [--mix <manifest.csv>] [--repeat 10] [--eval-only] [-- <adcorre-train options>]\n";

function fail(message, code = 2) {
  process.stderr.write(`posed-cv: ${printable(message)}\n`);
  process.exit(code);
}

const dash = process.argv.indexOf('--');
const own = dash < 0 ? process.argv.slice(2) : process.argv.slice(2, dash);
const trainArgs = dash < 0 ? [] : process.argv.slice(dash + 1);
let values;
try {
  ({ values } = parseArgs({
    args: own,
    options: {
      data: { type: 'string' },
      model: { type: 'string' },
      out: { type: 'string' },
      folds: { type: 'string', default: '3' },
      performer: { type: 'string', default: '^(\\d\\d)' },
      mix: { type: 'string' },
      repeat: { type: 'string', default: '10' },
      'eval-only': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (err) {
  fail(`${err.message}\n${usage}`);
}
if (values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
for (const key of ['data', 'model', 'out']) if (!values[key]) fail(`--${key} is required\n${usage}`);
const wholeAtLeast = (key, min) => {
  const n = Number(values[key]);
  if (!/^\d+$/.test(values[key]) || n < min)
    fail(`--${key}: expected a whole number >= ${min}, received '${values[key]}'`);
  return n;
};
const folds = wholeAtLeast('folds', 2);
const repeat = wholeAtLeast('repeat', 1);
let performerPattern;
try {
  performerPattern = new RegExp(values.performer);
} catch (err) {
  fail(`--performer: expected a regular expression with one group, received '${values.performer}' (${err.message})`);
}
if (values['eval-only'] && (values.mix || trainArgs.length))
  fail('--eval-only measures --model as it is: --mix and adcorre-train options have nothing to train');

const IMAGE = new Set(['.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff']);
const LABELS = new Set(['neutral', 'happy', 'sad', 'surprise', 'fear', 'disgust', 'angry', 'anger', 'contempt']);

/** Every image under `dir` whose parent folder is a class name: { path, label, performer }. */
function labelledImages(dir) {
  const found = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && IMAGE.has(extname(e.name).toLowerCase()) && LABELS.has(basename(d).toLowerCase())) {
        const m = performerPattern.exec(e.name);
        found.push({ path: p, label: basename(d).toLowerCase(), performer: m ? (m[1] ?? m[0]) : null });
      }
    }
  };
  walk(dir);
  return found.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** Runs one of the project's commands; its stderr passes through, its stdout is returned. */
function command(tool, args) {
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin', `${tool}.js`), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0
        ? done(stdout)
        : reject(
            new Error(`${tool} ${args.map(printable).join(' ')} ${signal ? `ended by ${signal}` : `exited ${code}`}`),
          ),
    );
  });
}

/** A CSV manifest path,label[,split] of rows, written atomically. */
function writeManifest(file, rows, withSplit) {
  const header = withSplit ? 'path,label,split' : 'path,label';
  const lines = rows.map((r) => [r.path, r.label, ...(withSplit ? [r.split] : [])].map(csvField).join(','));
  writeFileAtomic(file, `${header}\n${lines.join('\n')}\n`);
}

/** The folds: consecutive performers, as even as the count allows. */
function foldsOf(performers) {
  const per = performers.length / folds;
  return Array.from({ length: folds }, (_, i) => performers.slice(Math.round(i * per), Math.round((i + 1) * per)));
}

/** The rows of --mix (a path,label,split manifest), paths resolved against its folder. */
function mixRows() {
  if (!values.mix) return [];
  const text = readFileSync(values.mix, 'utf8');
  const [header, ...lines] = text.split(/\r?\n/).filter((l) => l.trim());
  if (header.replace(/^\uFEFF/, '').trim() !== 'path,label,split')
    fail(`--mix ${values.mix}: expected the header 'path,label,split', found '${header}'`);
  return lines.map((line) => {
    const [path, label, split] = line.split(',');
    if (split === undefined || line.includes('"'))
      fail(`--mix ${values.mix}: expected plain path,label,split rows, found '${line.slice(0, 200)}'`);
    return { path: resolve(dirname(values.mix), path), label, split };
  });
}

async function trainFold(i, trainPerformers, out) {
  const aligned = join(out, 'aligned');
  if (!existsSync(join(aligned, '.complete'))) {
    process.stderr.write('posed-cv: aligning every photo once (adcorre-data align)\n');
    await command('adcorre-data', ['align', resolve(values.data), '--out', aligned]);
    writeFileSync(join(aligned, '.complete'), '');
  }
  const crops = labelledImages(aligned).filter((c) => trainPerformers.has(c.performer));
  if (!crops.length) fail(`fold ${i + 1}: no aligned crops of its training performers in ${aligned}`, 1);
  const rows = [...mixRows()];
  for (let r = 0; r < repeat; r++) for (const c of crops) rows.push({ ...c, split: 'train' });
  const dir = join(out, `fold-${i + 1}`);
  mkdirSync(dir, { recursive: true });
  writeManifest(join(dir, 'train.csv'), rows, true);
  const run = join(dir, 'run');
  const resume = existsSync(join(run, 'last.ckpt')) ? ['--resume'] : [];
  await command('adcorre-train', [
    '--dataset',
    'csv',
    '--data',
    join(dir, 'train.csv'),
    '--init',
    resolve(values.model),
    '--out',
    run,
    ...resume,
    ...trainArgs,
  ]);
  const model = join(dir, 'model.onnx');
  await command('adcorre-export', [join(run, 'last.ckpt'), '-o', model]);
  return model;
}

async function main() {
  if (!existsSync(values.data)) fail(`--data ${values.data}: not found`);
  if (!existsSync(values.model)) fail(`--model ${values.model}: not found`);
  const out = resolve(values.out);
  mkdirSync(out, { recursive: true });
  const photos = labelledImages(resolve(values.data));
  const unnamed = photos.filter((p) => p.performer === null);
  if (unnamed.length)
    fail(`${unnamed.length} photos have no performer by --performer ${values.performer}, e.g. ${unnamed[0].path}`);
  const performers = [...new Set(photos.map((p) => p.performer))].sort();
  if (performers.length < folds) fail(`${performers.length} performers cannot make ${folds} folds`);
  const results = [];
  for (const [i, held] of foldsOf(performers).entries()) {
    const dir = join(out, `fold-${i + 1}`);
    const resultFile = join(dir, 'result.json');
    const heldSet = new Set(held);
    if (existsSync(resultFile)) {
      results.push(JSON.parse(readFileSync(resultFile, 'utf8')));
      continue;
    }
    mkdirSync(dir, { recursive: true });
    process.stderr.write(`posed-cv: fold ${i + 1}/${folds}: performers ${held.join(', ')} held out\n`);
    const model = values['eval-only']
      ? resolve(values.model)
      : await trainFold(i, new Set(performers.filter((p) => !heldSet.has(p))), out);
    const test = join(dir, 'held-out.csv');
    writeManifest(
      test,
      photos.filter((p) => heldSet.has(p.performer)),
      false,
    );
    const report = JSON.parse(
      await command('adcorre-eval', ['--pipeline', '--data', test, '--model', model, '--json']),
    );
    const result = {
      fold: i + 1,
      performers: held,
      model: relative(out, model).startsWith('..') ? model : relative(out, model),
      samples: report.samples,
      accuracy: report.accuracy,
      meanClassAccuracy: report.meanClassAccuracy,
      recall: report.recall,
    };
    writeFileAtomic(resultFile, `${JSON.stringify(result, null, 2)}\n`);
    results.push(result);
  }
  const stats = (xs) => {
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
    return { mean, sd, min: Math.min(...xs), max: Math.max(...xs) };
  };
  const classes = Object.keys(results[0].recall);
  const recall = Object.fromEntries(
    classes.map((c) => [c, stats(results.map((r) => r.recall[c]).filter((v) => v !== null)).mean]),
  );
  const summary = {
    data: resolve(values.data),
    model: resolve(values.model),
    mode: values['eval-only'] ? 'eval-only' : 'fine-tune per fold',
    trainArgs,
    folds: results,
    accuracy: stats(results.map((r) => r.accuracy)),
    meanClassAccuracy: stats(results.map((r) => r.meanClassAccuracy)),
    recall,
  };
  writeFileAtomic(join(out, 'cv.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const pct = (x) => `${(x * 100).toFixed(2)} %`;
  const lines = [
    '| fold | performers | photos | accuracy | mean class accuracy | lowest class |',
    '|---|---|---|---|---|---|',
    ...results.map((r) => {
      const [low, v] = Object.entries(r.recall)
        .filter(([, x]) => x !== null)
        .sort((a, b) => a[1] - b[1])[0];
      return `| ${r.fold} | ${r.performers.join(', ')} | ${r.samples} | ${pct(r.accuracy)} | ${pct(r.meanClassAccuracy)} | ${low} ${pct(v)} |`;
    }),
    `| mean +- sd | | | ${pct(summary.accuracy.mean)} +- ${(summary.accuracy.sd * 100).toFixed(2)} | ${pct(summary.meanClassAccuracy.mean)} +- ${(summary.meanClassAccuracy.sd * 100).toFixed(2)} | ${Object.entries(
      recall,
    )
      .sort((a, b) => a[1] - b[1])[0]
      .join(' ')
      .replace(/ ([\d.]+)$/, (_, x) => ` ${pct(Number(x))}`)} (mean over folds) |`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err) => fail(err.message, 1));
