#!/usr/bin/env node
// Video analysis speed on this machine's CPU: clips made here by ffmpeg (10 s
// at 30 fps, one face moving across: a shared portrait, or a drawn stand-in
// where ../shared is absent), analysed with FER.predictVideo (bundled default
// model, default detector) at --fps 10, decoding included:
//  - 640x480: goal at least 30 analysed frames per second (3x real time);
//  - 1920x1080: goal at least real time (10 analysed frames per second).
// Prints the CPU model, its cores and the load average (other work on the
// machine slows it down).
//   node bench/video.js [--json] [--fps 10] [--seconds 10]
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FER } from '../dist/index.js';
import { tempDir } from '../test/helpers/fixtures.js';
import { sharedDir } from '../test/helpers/shared.js';
import { helpOption, printUsage } from './usage.js';

const { values: args } = parseArgs({
  options: {
    ...helpOption,
    json: { type: 'boolean', default: false },
    fps: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '10' },
  },
});
if (args.help) {
  printUsage(import.meta.url);
  process.exit(0);
}
const fps = Number(args.fps);
const seconds = Number(args.seconds);
const dir = tempDir('adcorre-bench-video-');
const portrait = join(sharedDir, 'data', 'photos', 'deepface_img10.jpg');

/** A clip of `width` x `height`, `seconds` long at 30 fps, a face a third of the height crossing it. */
function clip(width, height) {
  const out = join(dir, `${width}x${height}.mp4`);
  const side = Math.round(height / 3);
  const face = existsSync(portrait)
    ? ['-loop', '1', '-i', portrait]
    : ['-f', 'lavfi', '-i', `testsrc2=s=${side}x${Math.round(side * 1.4)}:r=30`];
  execFileSync('ffmpeg', [
    ...['-v', 'error', '-y', '-f', 'lavfi', '-i', `color=c=0x64788c:s=${width}x${height}:d=${seconds}:r=30`],
    ...face,
    '-filter_complex',
    `[1]scale=${side}:-2[f];[0][f]overlay=x=(W-w)*t/${seconds}:y=(H-h)/3:shortest=1[v]`,
    ...['-map', '[v]', '-t', String(seconds), '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', out],
  ]);
  return out;
}

const fer = await FER.load();
const results = [];
for (const [width, height, goal] of [
  [640, 480, 30],
  [1920, 1080, 10],
]) {
  const file = clip(width, height);
  const start = performance.now();
  let frames = 0,
    faces = 0;
  for await (const record of fer.predictVideo(file, { fps })) {
    frames++;
    faces += record.faces.length;
  }
  const wall = (performance.now() - start) / 1000;
  results.push({
    video: `${width}x${height}`,
    fps,
    frames,
    facesFound: faces,
    seconds: Number(wall.toFixed(2)),
    framesPerSecond: Number((frames / wall).toFixed(1)),
    realTime: Number((seconds / wall).toFixed(2)),
    goalFramesPerSecond: goal,
    met: frames / wall >= goal,
  });
}
await fer.close();
const machine = { cpu: cpus()[0]?.model, cores: cpus().length, load: loadavg().map((l) => Number(l.toFixed(2))) };
if (args.json) console.log(JSON.stringify({ machine, results }));
else {
  console.log(`${machine.cpu}, ${machine.cores} cores, load average ${machine.load.join(' ')}`);
  for (const r of results)
    console.log(
      `${r.video} at --fps ${r.fps}: ${r.frames} frames (${r.facesFound} faces) in ${r.seconds} s: ` +
        `${r.framesPerSecond} frames/s, ${r.realTime}x real time (goal ${r.goalFramesPerSecond} frames/s: ${r.met ? 'met' : 'NOT met'})`,
    );
}
