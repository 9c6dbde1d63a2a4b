// The files the tools write and read. Each test
// reproduces one reported failure and checks the fix: an output path that is
// a device, a folder, a pipe or one of the inputs is refused before any work
// (exit 2, naming the option); a link is written through; write errors name
// the user's path and option, never the temporary file; inputs are read only
// when they are regular files; a checkpoint's checksum covers its header, and
// its load errors name the file and the parameter. Device nodes are made in a
// temporary folder (mknod, root only), never a system one.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { labelNames, openDataset, readMetadata } from 'adcorre-native';
import { checkOutputFile, OutputFileError, writeFileAtomic } from 'adcorre-native/internal';
import { describeError } from 'adcorre-native/internal';
import { readCheckpoint } from 'adcorre-native/internal';
import { Trainer } from 'adcorre-native/internal';
import { bin, cli, noStack } from './helpers/cli.js';
import { sharedDir } from './helpers/shared.js';
import { tempDir, writeImageFolder } from './helpers/fixtures.js';
import { tiny, untrainedCheckpoint, untrainedModel } from './helpers/models.js';

const noTemp = (t, stderr) => t.notRegex(stderr, /\.tmp\b/, 'the temporary file is not named');

const isRoot = process.getuid?.() === 0;
/** A device node in a temporary folder (root only): 1,3 behaves as /dev/null, 1,5 as /dev/zero. */
function deviceNode(dir, name, minor = 3) {
  const path = join(dir, name);
  execFileSync('mknod', ['-m', '666', path, 'c', '1', String(minor)]);
  return path;
}
const asRoot = (title, fn) =>
  isRoot
    ? test(title, fn)
    : test.skip(`${title} (skipped: mknod needs root, this runs as uid ${process.getuid?.()})`, fn);

const checkpointBytes = (mutate) => untrainedCheckpoint(tiny, mutate);
const dir = tempDir('adcorre-hardening-output-');
const ckpt = join(dir, 'tiny.ckpt');
writeFileSync(ckpt, checkpointBytes());
const ckptBytes = readFileSync(ckpt);
const modelPath = join(dir, 'tiny.onnx');
writeFileSync(modelPath, untrainedModel(tiny));
// 3 training and 1 validation image per class
const data = await writeImageFolder(join(dir, 'folder'), [
  ['train', 3],
  ['val', 1],
]);

// --- 3. -o replaces whatever is at the path ---

asRoot('adcorre-export -o <a device node> exits 2 naming --output; the device stays', async (t) => {
  const out = tempDir();
  const device = deviceNode(out, 'null');
  const r = await cli('adcorre-export', [ckpt, '-o', device]);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /Expected a file that can be written for --output but received .*\/null: it is a character device/);
  t.regex(r.stderr, /name a new file, or an existing regular file to replace/, 'says what to do');
  t.notRegex(r.stdout, /wrote/);
  t.true(lstatSync(device).isCharacterDevice(), 'still a device');
  noStack(t, r.stderr);
  // a link to a device: refused too, naming the target
  const link = join(out, 'link.onnx');
  symlinkSync(device, link);
  const linked = await cli('adcorre-export', [ckpt, '-o', link]);
  t.is(linked.code, 2, linked.stderr);
  t.regex(
    linked.stderr,
    /for --output but received .*link\.onnx: it is a symbolic link to .*\/null, a character device/,
  );
  t.true(lstatSync(link).isSymbolicLink());
  t.deepEqual(readdirSync(out).sort(), ['link.onnx', 'null'], 'no temporary file left');
});

test('adcorre-export -o <a named pipe> or <a folder> exits 2 naming --output and what is there', async (t) => {
  const out = tempDir();
  const fifo = join(out, 'pipe.onnx');
  execFileSync('mkfifo', [fifo]);
  const piped = await cli('adcorre-export', [ckpt, '-o', fifo], 20_000);
  t.is(piped.code, 2, piped.stderr);
  t.regex(piped.stderr, /for --output but received .*pipe\.onnx: it is a named pipe \(FIFO\)/);
  t.true(lstatSync(fifo).isFIFO());
  // item 11: a folder gave a raw EISDIR naming the temporary file, exit 1
  const folder = await cli('adcorre-export', [ckpt, '-o', out]);
  t.is(folder.code, 2, folder.stderr);
  t.regex(folder.stderr, /for --output but received .*: it is a folder: name a file in it/);
  t.notRegex(folder.stderr, /EISDIR/);
  noTemp(t, folder.stderr);
  const slash = await cli('adcorre-export', [ckpt, '-o', join(out, 'new') + '/']);
  t.is(slash.code, 2, slash.stderr);
  t.regex(slash.stderr, /it ends with a slash, which names a folder/);
  t.false(existsSync(join(out, 'new')));
  noStack(t, piped.stderr + folder.stderr + slash.stderr);
});

test('a symbolic link to a regular file is written through: the link stays, its target is replaced', async (t) => {
  const out = tempDir();
  const real = join(out, 'real.onnx');
  writeFileSync(real, 'old');
  const link = join(out, 'link.onnx');
  symlinkSync('real.onnx', link);
  const r = await cli('adcorre-export', [ckpt, '-o', link]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /wrote .*link\.onnx \(through the link: .*real\.onnx\)/);
  t.true(lstatSync(link).isSymbolicLink(), 'the link is kept');
  t.is(readlinkSync(link), 'real.onnx');
  t.is(readMetadata(readFileSync(real), real).config.inputSize, 36, 'the target holds the model');
  // a link that leads nowhere is refused: writing there would create a file the user did not name
  const dangling = join(out, 'dangling.onnx');
  symlinkSync(join(out, 'gone', 'x.onnx'), dangling);
  const d = await cli('adcorre-export', [ckpt, '-o', dangling]);
  t.is(d.code, 2, d.stderr);
  t.regex(d.stderr, /dangling\.onnx: it is a symbolic link to .*x\.onnx, which does not exist/);
  t.deepEqual(readdirSync(out).sort(), ['dangling.onnx', 'link.onnx', 'real.onnx']);
});

asRoot(
  'adcorre-eval --confusion <a device node> exits 2 before reading the data; a link is written through',
  async (t) => {
    const out = tempDir();
    const device = deviceNode(out, 'null');
    const r = await cli('adcorre-eval', ['--model', modelPath, '--data', data, '--confusion', device]);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, /for --confusion but received .*\/null: it is a character device/);
    t.true(lstatSync(device).isCharacterDevice());
    noStack(t, r.stderr);
    const real = join(out, 'real.png');
    writeFileSync(real, 'old');
    const link = join(out, 'c.png');
    symlinkSync(real, link);
    const ok = await cli('adcorre-eval', ['--model', modelPath, '--data', data, '--confusion', link]);
    t.is(ok.code, 0, ok.stderr);
    t.true(lstatSync(link).isSymbolicLink(), 'the link is kept');
    t.deepEqual([...readFileSync(real).subarray(1, 4)], [...Buffer.from('PNG')], 'its target holds the picture');
  },
);

test('adcorre-eval --confusion onto the model or the dataset file exits 2; a folder too', async (t) => {
  const model = join(tempDir(), 'm.onnx');
  writeFileSync(model, readFileSync(modelPath));
  const r = await cli('adcorre-eval', ['--model', model, '--data', data, '--confusion', model]);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /for --confusion but received .*m\.onnx: it is the input .*m\.onnx: writing it would destroy/);
  t.deepEqual(readFileSync(model), readFileSync(modelPath), 'the model is intact');
  const folder = await cli('adcorre-eval', ['--model', model, '--data', data, '--confusion', data]);
  t.is(folder.code, 2, folder.stderr);
  t.regex(folder.stderr, /for --confusion but received .*folder: it is a folder/);
  noStack(t, r.stderr + folder.stderr);
});

// --- 4. export overwrites its own input ---

test('adcorre-export a.ckpt -o a.ckpt (also through a link or a hard link) exits 2; the checkpoint is intact', async (t) => {
  const out = tempDir();
  const own = join(out, 'last.ckpt');
  writeFileSync(own, ckptBytes);
  const same = await cli('adcorre-export', [own, '-o', own]);
  t.is(same.code, 2, same.stderr);
  t.regex(
    same.stderr,
    /for --output but received .*last\.ckpt: it is the input .*last\.ckpt: writing it would destroy what is read/,
  );
  const link = join(out, 'link.onnx');
  symlinkSync(own, link);
  const linked = await cli('adcorre-export', [own, '-o', link]);
  t.is(linked.code, 2, linked.stderr);
  t.regex(linked.stderr, /link\.onnx: it is the input .*last\.ckpt \(the same file under another name\)/);
  const hard = join(out, 'hard.onnx');
  linkSync(own, hard);
  const hardLinked = await cli('adcorre-export', [ckpt, own, '-o', hard]);
  t.is(hardLinked.code, 2, hardLinked.stderr);
  t.regex(hardLinked.stderr, /hard\.onnx: it is the input .*last\.ckpt/);
  // a folder path with ./ and .. in it is the same file too
  const dotted = await cli('adcorre-export', [own, '-o', `${out}/./../${out.split('/').pop()}/last.ckpt`]);
  t.is(dotted.code, 2, dotted.stderr);
  t.deepEqual(readFileSync(own), ckptBytes, 'the checkpoint is untouched');
  t.notThrows(() => readCheckpoint(own));
  noStack(t, same.stderr + linked.stderr + hardLinked.stderr);
});

// --- 11. unclear errors ---

/** A read-only folder: a read-only tmpfs as root, else a chmod 555 folder; undefined where neither works. */
function readOnlyFolder() {
  const ro = join(tempDir(), 'ro');
  mkdirSync(ro);
  if (isRoot) {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro], { stdio: 'ignore' });
      return { ro, code: 'EROFS', done: () => execFileSync('umount', [ro]) };
    } catch {
      return undefined; // root ignores modes: a chmod would not make it read-only
    }
  }
  execFileSync('chmod', ['555', ro]);
  return { ro, code: 'EACCES', done: () => execFileSync('chmod', ['755', ro]) };
}

test('a read-only output folder: exit 2 naming --output and the path given, not the temporary file', async (t) => {
  const folder = readOnlyFolder();
  if (!folder) {
    t.log('skipped: running as root where mount(tmpfs, ro) is not permitted, and root ignores chmod');
    t.pass();
    return;
  }
  try {
    const target = join(folder.ro, 'model.onnx');
    const r = await cli('adcorre-export', [ckpt, '-o', target]);
    t.is(r.code, 2, r.stderr);
    t.regex(
      r.stderr,
      new RegExp(`for --output but received .*ro/model\\.onnx: its folder .*ro takes no files: .*\\(${folder.code}\\)`),
    );
    noTemp(t, r.stderr);
    noStack(t, r.stderr);
    // the write itself (the folder turned read-only after the check): the path and option, never the temporary file
    const error = t.throws(() => writeFileAtomic(target, 'x', '--output'), { instanceOf: OutputFileError });
    t.regex(
      error.message,
      new RegExp(
        `^Expected a file that can be written for --output but received .*ro/model\\.onnx: cannot create a file in .*ro: .*\\(${folder.code}\\)$`,
      ),
    );
    t.is(describeError(error).usage, true, 'a usage error: exit 2');
    t.throws(() => writeFileAtomic(target, 'x'), {
      message: new RegExp(`^Cannot write .*ro/model\\.onnx: .*${folder.code}`),
    });
  } finally {
    folder.done();
  }
});

test('writeFileAtomic refuses a folder, a pipe and a dangling link at the path, naming it and the option', (t) => {
  const out = tempDir();
  t.throws(() => writeFileAtomic(out, 'x', '--confusion'), {
    instanceOf: OutputFileError,
    message: /for --confusion but received .*: it is a folder/,
  });
  const fifo = join(out, 'p');
  execFileSync('mkfifo', [fifo]);
  t.throws(() => writeFileAtomic(fifo, 'x'), { message: /^Cannot write .*\/p: it is a named pipe \(FIFO\)/ });
  t.true(lstatSync(fifo).isFIFO());
  t.deepEqual(readdirSync(out), ['p'], 'no temporary file left');
  // checkOutputFile returns what is written: the path, or a link's target
  const real = join(out, 'real.png');
  writeFileSync(real, 'x');
  symlinkSync(real, join(out, 'l.png'));
  t.is(checkOutputFile(join(out, 'l.png'), '--confusion'), real);
  t.is(checkOutputFile(join(out, 'new.png'), '--confusion'), join(out, 'new.png'));
  // a replaced file keeps its permissions
  execFileSync('chmod', ['640', real]);
  writeFileAtomic(join(out, 'l.png'), 'y');
  t.is(statSync(real).mode & 0o777, 0o640);
  t.is(readFileSync(real, 'utf8'), 'y');
});

test('an edited checkpoint header is refused by the checksum (epoch 1e9 no longer gives "done")', async (t) => {
  const out = tempDir();
  const base = { data, arch: tiny, batch: 8, seed: 3, workers: 0, out };
  await new Trainer({ ...base, epochs: 2, maxSteps: 1 }).train();
  const last = join(out, 'last.ckpt');
  const bytes = readFileSync(last);
  // the editor keeps the layout valid: a new header and its length, the old checksum
  const at = 'ADCORRE-CKPT 2\n'.length + 32;
  const length = bytes.readUInt32LE(at);
  const header = JSON.parse(bytes.subarray(at + 4, at + 4 + length).toString('utf8'));
  header.meta.epoch = 1e9;
  const edited = Buffer.from(JSON.stringify(header));
  const lengthBytes = Buffer.alloc(4);
  lengthBytes.writeUInt32LE(edited.length);
  writeFileSync(last, Buffer.concat([bytes.subarray(0, at), lengthBytes, edited, bytes.subarray(at + 4 + length)]));
  t.throws(() => readCheckpoint(last), {
    message:
      /^checkpoint .*last\.ckpt: damaged checkpoint \(checksum mismatch; the file is truncated, corrupted or was edited\)$/,
  });
  await t.throwsAsync(() => new Trainer({ ...base, epochs: 2, resume: true }).train(), {
    message: /checkpoint .*last\.ckpt: damaged checkpoint \(checksum mismatch/,
  });
  // one flipped byte of the configuration, same length
  const flipped = Buffer.from(bytes);
  const k = flipped.indexOf('"middleBlocks":1', at);
  t.true(k > 0);
  flipped[k + '"middleBlocks":'.length] = '2'.charCodeAt(0);
  writeFileSync(last, flipped);
  t.throws(() => readCheckpoint(last), { message: /damaged checkpoint \(checksum mismatch/ });
});

/** The format written before the header was covered: "ADCORRE-CKPT 1\n", header length, header with the data's SHA-256, data. */
function formatOne(bytes, edit = () => {}) {
  const at = 'ADCORRE-CKPT 2\n'.length + 32;
  const length = bytes.readUInt32LE(at);
  const header = JSON.parse(bytes.subarray(at + 4, at + 4 + length).toString('utf8'));
  const data = bytes.subarray(at + 4 + length);
  header.sha256 = createHash('sha256').update(data).digest('hex');
  edit(header);
  const json = Buffer.from(JSON.stringify(header));
  const lengthBytes = Buffer.alloc(4);
  lengthBytes.writeUInt32LE(json.length);
  return Buffer.concat([Buffer.from('ADCORRE-CKPT 1\n'), lengthBytes, json, data]);
}

test('format-1 checkpoints still load; their unchecked header values are range-checked and named', (t) => {
  const out = tempDir();
  const old = join(out, 'old.ckpt');
  writeFileSync(old, formatOne(ckptBytes));
  const a = readCheckpoint(old);
  const b = readCheckpoint(ckpt);
  t.deepEqual(a.meta, b.meta);
  t.deepEqual([...a.state.weights.keys()], [...b.state.weights.keys()]);
  t.deepEqual(a.state.moments.get('entry.conv2.weight').v, b.state.moments.get('entry.conv2.weight').v);
  writeFileSync(
    old,
    formatOne(ckptBytes, (h) => (h.meta.epoch = 1e9)),
  );
  t.throws(() => readCheckpoint(old), {
    message:
      /^checkpoint .*old\.ckpt: Expected an integer in \[0, 2\] \(the run's epochs\) for epoch but received 1000000000$/,
  });
  writeFileSync(
    old,
    formatOne(ckptBytes, (h) => (h.meta.step = -1)),
  );
  t.throws(() => readCheckpoint(old), { message: /for step but received -1$/ });
  // the first report: a v1 header edited so that one moment's entry is shorter ("wrong length for m" from the engine)
  writeFileSync(
    old,
    formatOne(ckptBytes, (h) => {
      const e = h.entries.find((x) => x.kind === 'm' && x.name === 'entry.conv2.weight');
      e.length = 100;
    }),
  );
  t.throws(() => readCheckpoint(old), {
    message:
      /^checkpoint .*old\.ckpt: Expected 576 values for m\[5\] \(entry\.conv2\.weight, shape 8x8x3x3\) but received 100$/,
  });
  writeFileSync(old, Buffer.from('ADCORRE-CKPT 9\nwhatever'));
  t.throws(() => readCheckpoint(old), {
    message: /written in checkpoint format '9', which this version does not read/,
  });
});

test('a checkpoint whose tensors do not fit its configuration names the file and the parameter', async (t) => {
  const out = tempDir();
  const short = join(out, 'short.ckpt');
  writeFileSync(
    short,
    checkpointBytes((state) => state.weights.set('entry.conv2.weight', new Float32Array(100))),
  );
  t.throws(() => readCheckpoint(short), {
    message:
      /^checkpoint .*short\.ckpt: Expected 576 values for weights\[5\] \(entry\.conv2\.weight, shape 8x8x3x3\) but received 100$/,
  });
  const r = await cli('adcorre-export', [short, '-o', join(out, 'm.onnx')]);
  t.is(r.code, 1, r.stderr);
  t.regex(
    r.stderr,
    /adcorre-export: checkpoint .*short\.ckpt: Expected 576 values for weights\[5\] \(entry\.conv2\.weight/,
  );
  noStack(t, r.stderr);
  t.false(existsSync(join(out, 'm.onnx')));
  const moments = join(out, 'moments.ckpt');
  writeFileSync(
    moments,
    checkpointBytes((state) =>
      state.moments.set('entry.bn1.gamma', { m: new Float32Array(8), v: new Float32Array(3) }),
    ),
  );
  t.throws(() => readCheckpoint(moments), {
    message: /Expected 8 values for v\[1\] \(entry\.bn1\.gamma, shape 8\) but received 3$/,
  });
  const missing = join(out, 'missing.ckpt');
  writeFileSync(
    missing,
    checkpointBytes((state) => state.weights.delete('classifier.bias')),
  );
  t.throws(() => readCheckpoint(missing), {
    message: /Expected 7 values for weights\[\d+\] \(classifier\.bias, shape 7\) but received none \(missing\)/,
  });
  const other = join(out, 'other.ckpt');
  writeFileSync(
    other,
    checkpointBytes((state, meta) => (meta.options.config = { ...tiny, k: 3 })),
  );
  t.throws(() => readCheckpoint(other), {
    message: /^checkpoint .*other\.ckpt: Expected \d+ values for weights\[\d+\] \(/,
  });
});

// --- 9 (part). inputs must be regular files ---

asRoot('adcorre-export <a link to a zero device> exits 2 at once, naming the argument and the device', async (t) => {
  const out = tempDir();
  const zero = deviceNode(out, 'zero', 5);
  const link = join(out, 'model.ckpt');
  symlinkSync(zero, link);
  // reading the device (the bug: 3.7 GB in 30 s) would run into the deadline and be killed: no exit 2 then
  const r = await cli('adcorre-export', [link, '-o', join(out, 'm.onnx')], 20_000);
  t.is(r.code, 2, r.stderr);
  t.regex(
    r.stderr,
    /Expected a checkpoint \(\.ckpt\) or model \(\.onnx\) file for <checkpoint> but received .*model\.ckpt: a character device, not a regular file/,
  );
  const onnx = await cli('adcorre-export', [zero, '-o', join(out, 'm.onnx')], 20_000);
  t.is(onnx.code, 2, onnx.stderr);
  t.regex(onnx.stderr, /for <checkpoint> but received .*\/zero: a character device, not a regular file/);
  noStack(t, r.stderr + onnx.stderr);
  // the API (the trainer's --resume): the checkpoint's own error, naming the file
  t.throws(() => readCheckpoint(link), {
    message: /^checkpoint .*model\.ckpt: a character device, not a regular file$/,
  });
});

test('a named pipe, a folder or a missing file as an input is refused without blocking', async (t) => {
  const out = tempDir();
  const fifo = join(out, 'pipe.ckpt');
  execFileSync('mkfifo', [fifo]);
  const r = await cli('adcorre-export', [fifo, '-o', join(out, 'm.onnx')], 20_000);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /for <checkpoint> but received .*pipe\.ckpt: a named pipe \(FIFO\), not a regular file/);
  const folder = await cli('adcorre-export', [out, '-o', join(out, 'm.onnx')]);
  t.is(folder.code, 2, folder.stderr);
  t.regex(folder.stderr, /for <checkpoint> but received .*: a folder, not a regular file/);
  const none = await cli('adcorre-export', [join(out, 'none.ckpt'), '-o', join(out, 'm.onnx')]);
  t.is(none.code, 2, none.stderr);
  t.regex(none.stderr, /for <checkpoint> but received .*none\.ckpt: file not found/);
  t.throws(() => readCheckpoint(fifo), {
    message: /^checkpoint .*pipe\.ckpt: a named pipe \(FIFO\), not a regular file$/,
  });
  // a FIFO named config.json beside the checkpoint (optional labels) is passed over, not waited on
  const run = join(out, 'run');
  mkdirSync(run);
  writeFileSync(join(run, 'last.ckpt'), ckptBytes);
  execFileSync('mkfifo', [join(run, 'config.json')]);
  const beside = await cli('adcorre-export', [join(run, 'last.ckpt'), '-o', join(out, 'ok.onnx')], 20_000);
  t.is(beside.code, 0, beside.stderr);
  rmSync(run, { recursive: true });
  noStack(t, r.stderr + folder.stderr + none.stderr);
});

// --- Issue #43 (round three): output confined, CSV records as written, numbers strict, formulas neutralised ---

const photos = join(sharedDir, 'data', 'photos');
const havePhotos = existsSync(photos);
const photosNote = havePhotos ? '' : ` (skipped: ${photos} is absent)`;

test('align refuses a split that names a folder outside --out, and says so', async (t) => {
  const work = tempDir();
  const manifest = join(work, 'm.csv');
  // a photo with a face where ../shared has one (the crop was written to work/escaped/happy), else any path
  const photo = havePhotos ? join(photos, 'deepface_img11.jpg') : join(work, 'face.jpg');
  writeFileSync(manifest, `path,label,split\n${photo},happy,../../escaped\n`);
  const out = join(work, 'o', 'deep');
  const r = await cli('adcorre-data', ['align', manifest, '--out', out]);
  t.is(r.code, 1, r.stderr);
  t.regex(
    r.stdout,
    /1 left out, their split not a folder name \('\.\.\/\.\.\/escaped' cannot be a name in .*: it holds a slash/,
  );
  t.false(existsSync(join(work, 'escaped')), 'nothing written outside --out');
  t.deepEqual(readdirSync(out), []);
  noStack(t, r.stderr);
});

test('align --size outside [16, 1024] is a usage error naming --size', async (t) => {
  for (const size of ['100000', '1', '0x20']) {
    const r = await cli('adcorre-data', ['align', data, '--out', tempDir(), '--size', size]);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, /option '--size <px>' argument '.*' is invalid\. Expected an integer in \[16, 1024\]/);
  }
});

(havePhotos ? test : test.skip)(
  `align again into the same --out keeps the crops; Ctrl-C stops cleanly and says so${photosNote}`,
  async (t) => {
    const work = tempDir();
    const list = readdirSync(photos).filter((f) => f.endsWith('.jpg'));
    const manifest = join(work, 'm.csv');
    writeFileSync(manifest, `path,label\n${list.map((f) => `${join(photos, f)},happy`).join('\n')}\n`);
    const out = join(work, 'out');
    const crops = () => readdirSync(join(out, 'all', 'happy')).sort();
    // interrupted: exit 130 with what it did, no temporary file, and only whole crops
    const child = spawn(process.execPath, [bin('adcorre-data'), 'align', manifest, '--out', out]);
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const closed = new Promise((resolve) => child.on('close', resolve));
    const started = Date.now();
    while (!existsSync(join(out, 'all', 'happy')) && Date.now() - started < 60_000)
      await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    t.is(await closed, 130);
    t.regex(stdout, /^interrupted after \d+ of \d+ photos: \d+ aligned .*\nrun the same command again to go on/);
    t.deepEqual(
      crops().filter((f) => !f.endsWith('.png')),
      [],
      'no temporary files',
    );
    // again: the crops there are kept, the rest written; then nothing is written twice (no name-2.png)
    const again = await cli('adcorre-data', ['align', manifest, '--out', out], 120_000);
    t.is(again.code, 0, again.stderr);
    const done = crops();
    t.false(
      done.some((f) => /-2\.png$/.test(f)),
      'no crop written twice',
    );
    const third = await cli('adcorre-data', ['align', manifest, '--out', out], 120_000);
    t.regex(
      third.stdout,
      new RegExp(`^0 aligned 48x48 crops of ${list.length} photos in .*; ${done.length} already there \\(kept\\)`),
    );
    t.deepEqual(crops(), done);
    // another size replaces them
    const larger = await cli('adcorre-data', ['align', manifest, '--out', out, '--size', '64'], 120_000);
    t.regex(larger.stdout, new RegExp(`^${done.length} aligned 64x64 crops`));
  },
);

test('probabilities that overflow, and numbers that are not decimal, are bad rows', async (t) => {
  const work = tempDir();
  const names = labelNames(7);
  const path = join(work, 'm.csv');
  const p = (over) => names.map((l) => over[l] ?? '0').join(',');
  writeFileSync(join(work, 'a.png'), '');
  writeFileSync(
    path,
    `path,label,split,${names.map((l) => `p_${l}`).join(',')}\n` +
      `a.png,happy,train,${p({ neutral: '1e308', happy: '1e308' })}\n` +
      `a.png,happy,train,${p({ happy: '0x10' })}\n` +
      `a.png,0x1,train,${p({ happy: '1' })}\n` +
      `a.png,3.0,train,${p({ happy: '1' })}\n` +
      `a.png,06,train,${p({ happy: '1' })}\n`,
  );
  const dataset = await openDataset(path, { format: 'csv' });
  const samples = dataset.splits.get('train').samples;
  t.is(samples.length, 1, 'only the row with label 06 (anger) and a usable distribution');
  t.is(samples[0].label, 6);
  const examples = Object.values(dataset.report.summary().examples).flat().join('\n');
  t.regex(examples, /:2: malformed row \(the probabilities .* add up to more than a number holds/);
  t.regex(examples, /:3: malformed row \(p_happy must be a probability .*not '0x10'\)/);
  t.regex(examples, /:4: unknown label \(label 0x1\)/);
  t.regex(examples, /:5: unknown label \(label 3\.0\)/);
  // adcorre-data targets: no NaN written, the overflowing row counted
  const out = join(work, 't.csv');
  const predicted = join(work, 'p.csv');
  writeFileSync(
    predicted,
    `path,label,split,predicted,${names.map((l) => `p_${l}`).join(',')}\n` +
      `a.png,happy,train,happy,${p({ neutral: '1e308', happy: '1e308' })}\n` +
      `a.png,happy,train,happy,${p({ happy: '1' })}\n`,
  );
  const r = await cli('adcorre-data', ['targets', predicted, '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^1 row in .*; 1 bad row skipped/);
  t.notRegex(readFileSync(out, 'utf8'), /NaN/);
  // --prior: decimal numbers only
  const prior = await cli('adcorre-export', [ckpt, '-o', join(work, 'x.onnx'), '--prior', '0x10,1,1,1,1,1,1']);
  t.is(prior.code, 2, prior.stderr);
  t.regex(prior.stderr, /--prior/);
});

test('adcorre-export --prior-from <a named pipe> exits 2 at once, naming it', async (t) => {
  const fifo = join(tempDir(), 'data.csv');
  execFileSync('mkfifo', [fifo]);
  const r = await cli('adcorre-export', [ckpt, '-o', join(tempDir(), 'x.onnx'), '--prior-from', fifo]);
  t.is(r.code, 2, r.stderr);
  t.regex(
    r.stderr,
    /for --prior-from but received .*data\.csv: the dataset .*: a named pipe \(FIFO\), not a regular file/,
  );
  noStack(t, r.stderr);
});
