// Video: clips made here by ffmpeg from the shared photos (a slideshow, a
// pan, two faces crossing), analysed with the bundled model. The per-frame
// answers equal FER.predict on the same decoded frames; the crossing keeps
// its ids; no ffmpeg and a truncated file give the errors a user can act on;
// the CLI's outputs. Skipped, saying why, without ffmpeg or ../shared.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { FER } from 'adcorre-native';
import { decodeFrames } from 'adcorre-native/internal';
import { findTools, FfmpegMissingError } from 'adcorre-native/internal';
import { isVideoFile, looksLikeVideo, probeVideo, VideoError } from 'adcorre-native/internal';
import { bin, cli, noStack } from './helpers/cli.js';
import { tempDir } from './helpers/fixtures.js';
import { sharedDir } from './helpers/shared.js';

const photos = join(sharedDir, 'data', 'photos');
const haveFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0 && spawnSync('ffprobe', ['-version']).status === 0;
const havePhotos = existsSync(join(photos, 'deepface_img10.jpg'));
const why = !haveFfmpeg
  ? ' (skipped: ffmpeg is not installed: apt-get install ffmpeg)'
  : !havePhotos
    ? ` (skipped: ${photos} is absent)`
    : '';
const clipTest = why ? (title) => test.skip(`${title}${why}`, () => {}) : (title, fn) => test.serial(title, fn);

const dir = tempDir('adcorre-video-');
const face = (name) => join(photos, name);
const ffmpeg = (...args) => execFileSync('ffmpeg', ['-v', 'error', '-y', ...args]);
// a key frame every 5 frames: half a file holds some whole frames
const H264 = ['-c:v', 'libx264', '-preset', 'veryfast', '-g', '5', '-pix_fmt', 'yuv420p', '-movflags', '+faststart'];

/** Three portraits, one second each, letterboxed to 320x240. */
function slideshow() {
  const out = join(dir, 'slideshow.mp4');
  const inputs = ['deepface_img10.jpg', 'deepface_img4.jpg', 'deepface_img5.jpg'].flatMap((p) => [
    '-loop',
    '1',
    '-t',
    '1',
    '-i',
    face(p),
  ]);
  const fit = 'scale=320:240:force_original_aspect_ratio=decrease,pad=320:240:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=25';
  ffmpeg(
    ...inputs,
    '-filter_complex',
    `[0]${fit}[a];[1]${fit}[b];[2]${fit}[c];[a][b][c]concat=n=3:v=1[v]`,
    '-map',
    '[v]',
    ...H264,
    out,
  );
  return out;
}

/** Portraits moving over a plain frame: each `{ photo, width, x, y }`, x and y ffmpeg expressions of t. */
function movingFaces(name, size, seconds, faces) {
  const out = join(dir, name);
  let last = '0';
  const chain = faces.map((f, i) => {
    const step = `[${i + 1}]scale=${f.width}:-2[f${i}];[${last}][f${i}]overlay=x=${f.x}:y=${f.y}:shortest=1[v${i}]`;
    last = `v${i}`;
    return step;
  });
  ffmpeg(
    ...['-f', 'lavfi', '-i', `color=c=0x5a7864:s=${size}:d=${seconds}:r=25`],
    ...faces.flatMap((f) => ['-loop', '1', '-i', face(f.photo)]),
    ...['-filter_complex', chain.join(';'), '-map', `[${last}]`, '-t', String(seconds), ...H264, out],
  );
  return out;
}

/** A portrait (120 px wide) moving across a 320x240 frame in 2 s, as a camera's pan shows it. */
const pan = () =>
  movingFaces('pan.mp4', '320x240', 2, [{ photo: 'deepface_img10.jpg', width: 120, x: '20+t*80', y: -10 }]);

/** Two portraits (96 px wide) crossing a 480x240 frame in 3 s, one from each side, overlapping midway. */
const crossing = () =>
  movingFaces('crossing.mp4', '480x240', 3, [
    { photo: 'deepface_img10.jpg', width: 96, x: '10+t*120', y: 20 },
    { photo: 'deepface_img4.jpg', width: 96, x: '374-t*120', y: 60 },
  ]);

let fer;
const clips = {};
test.before(async () => {
  if (why) return;
  fer = await FER.load();
  clips.slideshow = slideshow();
  clips.pan = pan();
  clips.crossing = crossing();
});
test.after.always(async () => fer?.close());

async function collect(iterable) {
  const out = [];
  for await (const item of iterable) out.push(item);
  return out;
}

clipTest('video: recognised by content, described by ffprobe', async (t) => {
  const renamed = join(dir, 'clip.jpg');
  writeFileSync(renamed, readFileSync(clips.pan));
  t.true(isVideoFile(renamed), 'a video named .jpg is a video');
  t.false(isVideoFile(face('deepface_img10.jpg')));
  t.false(looksLikeVideo(Buffer.from('\0\0\0\x18ftypheic\0\0\0\0', 'latin1')), 'HEIF is a photo');
  const info = await probeVideo(findTools().ffprobe, clips.pan);
  t.like(info, { width: 320, height: 240, fps: 25, rotation: 0, codec: 'h264' });
  t.true(Math.abs(info.duration - 2) < 0.1);
});

clipTest('video: the per-frame answers equal FER.predict on the same decoded frames', async (t) => {
  const records = await collect(fer.predictVideo(clips.slideshow, { fps: 4 }));
  const info = await probeVideo(findTools().ffprobe, clips.slideshow);
  const frames = await collect(decodeFrames(findTools().ffmpeg, info, { fps: 4 }));
  t.is(records.length, 12);
  t.is(frames.length, records.length);
  for (const [i, frame] of frames.entries()) {
    const expected = await fer.predict({ data: frame.rgb, width: frame.width, height: frame.height, channels: 3 });
    const got = records[i];
    t.is(got.frame, i);
    t.true(Math.abs(got.time - i / 4) < 1e-9);
    t.is(got.faces.length, expected.faces.length, `frame ${i}`);
    got.faces.forEach((f, j) => {
      t.deepEqual(f.probabilities, expected.faces[j].probabilities);
      t.is(f.label, expected.faces[j].label);
      t.deepEqual(f.box, expected.faces[j].box); // the decoded frames are the video's size here
    });
  }
  t.true(
    records.every((r) => r.faces.length === 1),
    'one face on every slide',
  );
});

clipTest('video: a pan keeps one track; the summary adds up', async (t) => {
  const analysis = fer.predictVideo(clips.pan, { fps: 5, smooth: 0.5 });
  const records = await collect(analysis);
  t.is(records.length, 10);
  t.deepEqual([...new Set(records.flatMap((r) => r.faces.map((f) => f.track)))], [1]);
  const [summary] = analysis.summary();
  t.is(summary.track, 1);
  t.is(summary.frames, 10);
  t.true(Math.abs(summary.seconds - 2) < 1e-9);
  t.true(Math.abs(Object.values(summary.shares).reduce((a, b) => a + b) - 1) < 1e-9);
  t.is(summary.dominant, Object.entries(summary.shares).sort((a, b) => b[1] - a[1])[0][0]);
});

clipTest('video: two faces crossing keep their ids', async (t) => {
  const records = await collect(fer.predictVideo(clips.crossing, { fps: 10 }));
  const byX = (r) => [...r.faces].sort((a, b) => a.box.x - b.box.x).map((f) => f.track);
  const first = records.find((r) => r.faces.length === 2);
  const last = records.findLast((r) => r.faces.length === 2);
  t.truthy(first && last, 'both faces found');
  t.true(last.time - first.time > 2, 'both found at the start and at the end');
  t.deepEqual(byX(last), byX(first).reverse(), 'the left face at the start is the right one at the end');
  t.is(new Set(records.flatMap((r) => r.faces.map((f) => f.track))).size, 2, 'no third id');
});

clipTest('video: a truncated file gives the frames that decode, then an error naming it', async (t) => {
  const bytes = readFileSync(clips.pan);
  const cut = join(dir, 'cut.mp4');
  writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const records = [];
  const err = await t.throwsAsync(async () => {
    for await (const r of fer.predictVideo(cut, { fps: 5 })) records.push(r);
  });
  t.true(err instanceof VideoError);
  t.true(err.message.startsWith(cut), err.message);
  t.regex(err.message, /truncated or corrupt/);
  t.true(records.length > 0 && records.length < 10, `${records.length} frames before the error`);
  t.is(err.frames, records.length);
});

clipTest('video: no ffmpeg is an error naming the install command', async (t) => {
  const env = { ...process.env, ADCORRE_FFMPEG: join(dir, 'no-such-ffmpeg') };
  t.throws(() => findTools(env), {
    instanceOf: FfmpegMissingError,
    message: /apt-get install ffmpeg.*ADCORRE_FFMPEG/s,
  });
  t.throws(() => findTools({ PATH: dir }), { message: /ffmpeg is needed for video and was not found on PATH/ });
  const r = await cli('adcorre-predict', [clips.pan], 60_000, env);
  t.is(r.code, 2);
  t.regex(r.stderr, /no-such-ffmpeg, which is not an executable file.*apt-get install ffmpeg/s);
  noStack(t, r.stderr);
});

clipTest('video: close() during a video stops ffmpeg, and the iteration ends', async (t) => {
  const own = await FER.load();
  const children = () =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
          return (
            stat.includes('(ffmpeg)') && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid
          );
        } catch {
          return false;
        }
      });
  const iterator = own.predictVideo(clips.crossing, { fps: 10 })[Symbol.asyncIterator]();
  t.false((await iterator.next()).done);
  t.is(children().length, 1, 'ffmpeg running');
  await own.close();
  t.true((await iterator.next()).done);
  t.deepEqual(children(), [], 'ffmpeg gone, no zombie');
  t.throws(() => own.predictVideo(clips.pan), { message: /closed/ });
});

clipTest('adcorre-predict on a video: --json records and summaries, --csv rows, outputs', async (t) => {
  const json = await cli('adcorre-predict', [clips.pan, '--fps', '5', '--json']);
  t.is(json.code, 0, json.stderr);
  const lines = json.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.is(lines.length, 11);
  t.like(lines[0], { file: clips.pan, frame: 0, time: 0 });
  t.deepEqual(Object.keys(lines[0].faces[0]), ['track', 'box', 'label', 'confidence', 'probabilities']);
  t.is(lines[10].tracks[0].track, 1);

  const annotated = join(dir, 'out', 'pan.annotated.mp4');
  const plot = join(dir, 'out', 'pan.png');
  const csv = await cli('adcorre-predict', [
    clips.pan,
    '--fps',
    '5',
    '--csv',
    '--annotate',
    annotated,
    '--timeline',
    plot,
  ]);
  t.is(csv.code, 0, csv.stderr);
  const rows = csv.stdout.trim().split('\n');
  t.regex(rows[0], /^file,frame,time,track,x,y,width,height,label,confidence,neutral,/);
  t.is(rows.length, 11);
  const info = await probeVideo(findTools().ffprobe, annotated);
  t.like(info, { width: 320, height: 240, fps: 5 });
  t.like(await sharp(plot).metadata(), { format: 'png', width: 1000 });
  t.deepEqual(
    readdirSync(join(dir, 'out')).filter((f) => f.endsWith('.tmp')),
    [],
    'no temporary file left',
  );

  const over = await cli('adcorre-predict', [clips.pan, '--annotate', clips.pan]);
  t.is(over.code, 2);
  t.regex(over.stderr, /--annotate.*writing it would destroy what is read/);
  t.true(statSync(clips.pan).size > 0);
});

clipTest('adcorre-predict: video options refused where they do not apply, naming the option', async (t) => {
  const photo = face('deepface_img10.jpg');
  const fps = await cli('adcorre-predict', [photo, '--fps', '5']);
  t.is(fps.code, 2);
  t.regex(fps.stderr, /Expected video inputs for --fps/);
  const csv = await cli('adcorre-predict', [clips.pan, photo, '--csv']);
  t.is(csv.code, 2);
  t.regex(csv.stderr, /Expected only video inputs for --csv/);
  const bad = await cli('adcorre-predict', [clips.pan, '--fps', '0']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--fps/);
  const truncated = join(dir, 'cut-cli.mp4');
  const bytes = readFileSync(clips.pan);
  writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const cut = await cli('adcorre-predict', [truncated, '--fps', '5']);
  t.is(cut.code, 1);
  t.regex(cut.stdout, /track 1/);
  t.regex(cut.stderr, /cut-cli\.mp4: decoding stopped after \d+ frames/);
  noStack(t, cut.stderr);
});

clipTest('adcorre-predict: Ctrl-C during --annotate leaves no partial copy and no ffmpeg', async (t) => {
  const out = join(dir, 'interrupted', 'copy.mp4');
  const child = spawn(process.execPath, [bin('adcorre-predict'), clips.crossing, '--fps', '25', '--annotate', out]);
  child.stdout.once('data', () => child.kill('SIGINT'));
  const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c)));
  t.is(code, 130);
  t.deepEqual(readdirSync(join(dir, 'interrupted')), [], 'neither the copy nor its temporary file');
});
