// adcorre-predict on videos (inputs recognised by content): one record per
// analysed frame (text, --json or --csv), then one summary per track; an
// annotated copy (--annotate out.mp4) and a timeline plot (--timeline
// out.png). Usage errors (an option that does not fit the inputs, no ffmpeg)
// are OptionErrors, found before the model is loaded. Ctrl-C stops ffmpeg
// and leaves no partial annotated copy.
import { basename, extname, join } from 'node:path';
import { SingleBar } from 'cli-progress';
import { type Command, InvalidArgumentError } from 'commander';
import type { FER } from '../infer/fer.js';
import { checkOutputFile, ensureDir } from '../io.js';
import { printable } from '../terminal.js';
import { OptionError } from '../validate.js';
import { drawFrame } from '../video/draw.js';
import { isVideoOutputName, VideoEncoder } from '../video/encode.js';
import { findTools } from '../video/ffmpeg.js';
import { VIDEO_DEFAULTS, type VideoAnalysis } from '../video/predict-video.js';
import { TimelineData, timelineSvg, writeTimeline } from '../video/timeline.js';
import type { TrackSummary, VideoFrameRecord } from '../video/types.js';
import { describeError } from './args.js';

function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 240))
    throw new InvalidArgumentError('expected frames per second in (0, 240]');
  return n;
}

function seconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && Number.isFinite(n))) throw new InvalidArgumentError('expected seconds >= 0');
  return n;
}

/** The video options of adcorre-predict. */
export function addVideoOptions(program: Command): Command {
  return program
    .option('--fps <n>', `videos: frames analysed per second (default ${VIDEO_DEFAULTS.fps})`, positiveNumber)
    .option(
      '--smooth <s>',
      "videos: smooth each track's probabilities over this many seconds (default 0: raw)",
      seconds,
    )
    .option('--csv', 'videos: one CSV row per face per analysed frame')
    .option('--timeline <file|dir>', "videos: plot each track's expressions over time (a .png, or a folder)");
}

interface Outputs {
  annotate?: string;
  timeline?: string;
}

/** Where each video's outputs go: a named file for the one video, else `<dir>/<stem>.<kind>`. */
export interface VideoPlan {
  videos: string[];
  ffmpeg: string;
  outputs: Outputs[];
}

function outputFor(option: string, value: string, videos: string[], suffix: string, isFile: boolean): string[] {
  if (isFile) {
    if (videos.length !== 1)
      throw new OptionError(option, 'a folder when several videos are given', `the file ${printable(value)}`);
    return [checkOutputFile(value, option, videos)];
  }
  ensureDir(value, option);
  const seen = new Map<string, number>();
  return videos.map((v) => {
    const stem = basename(v, extname(v));
    const n = (seen.get(stem) ?? 0) + 1;
    seen.set(stem, n);
    return checkOutputFile(join(value, `${stem}${n > 1 ? `-${n}` : ''}${suffix}`), option, videos);
  });
}

/**
 * The videos' plan, checked before any work: the options that apply to videos only refused
 * without one, --csv refused with photos, output files checked, ffmpeg found.
 * `annotate` is true when --annotate names a video file (else it is the photos' folder).
 */
export function planVideos(videos: string[], images: string[], opts: Record<string, unknown>): VideoPlan | undefined {
  if (!videos.length) {
    for (const option of ['fps', 'smooth', 'csv', 'timeline'])
      if (opts[option] !== undefined)
        throw new OptionError(`--${option}`, 'video inputs', 'none (no input is a video)');
    return undefined;
  }
  if (typeof opts.annotate === 'string' && isVideoOutputName(opts.annotate) && images.length)
    throw new OptionError('--annotate', 'a folder when photos are given', `the video file ${printable(opts.annotate)}`);
  if (opts.csv && opts.json) throw new OptionError('--csv', 'either --csv or --json', 'both');
  if (opts.csv && images.length)
    throw new OptionError('--csv', 'only video inputs', `${images.length} photos too (${printable(images[0])}, ...)`);
  const ffmpeg = findTools().ffmpeg;
  const annotate = opts.annotate as string | undefined;
  const timeline = opts.timeline as string | undefined;
  const annotated = annotate
    ? outputFor('--annotate', annotate, videos, '.annotated.mp4', isVideoOutputName(annotate))
    : [];
  const plots = timeline
    ? outputFor('--timeline', timeline, videos, '.timeline.png', extname(timeline).toLowerCase() === '.png')
    : [];
  return { videos, ffmpeg, outputs: videos.map((_, i) => ({ annotate: annotated[i], timeline: plots[i] })) };
}

const csvField = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

function write(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** A name for the terminal: escaped there, exact in a file or pipe. */
const shown = (s: string) => (process.stdout.isTTY ? printable(s) : s);

function printFrame(record: VideoFrameRecord, opts: Record<string, unknown>, labels: readonly string[]): void {
  if (opts.json) return write(JSON.stringify(record));
  for (const f of record.faces) {
    const b = [f.box.x, f.box.y, f.box.width, f.box.height].map((v) => v.toFixed(1));
    if (opts.csv)
      write(
        [
          csvField(shown(record.file)),
          record.frame,
          record.time.toFixed(3),
          f.track,
          ...b,
          csvField(shown(f.label)),
          f.confidence.toFixed(4),
          ...labels.map((l) => f.probabilities[l].toFixed(4)),
        ].join(','),
      );
    else
      write(
        `${printable(record.file)}\t${record.time.toFixed(2)} s\ttrack ${f.track} at ${b.map(Number).map(Math.round).join(',')}` +
          `\t${printable(f.label)} ${(f.confidence * 100).toFixed(1)}%`,
      );
  }
}

function printSummary(file: string, tracks: TrackSummary[], opts: Record<string, unknown>): void {
  if (opts.json) return write(JSON.stringify({ file, tracks }));
  if (opts.csv) return; // a CSV holds frames only: its rows stay one table
  for (const t of tracks) {
    const shares = Object.entries(t.shares)
      .filter(([, s]) => s > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([l, s]) => `${printable(l)} ${(s * 100).toFixed(0)}%`)
      .join(', ');
    write(
      `${printable(file)}\ttrack ${t.track}\t${t.seconds.toFixed(1)} s on screen (${t.first.toFixed(1)}-${t.last.toFixed(1)} s)` +
        `\tmostly ${printable(t.dominant)} (${shares})`,
    );
  }
}

/** One video through the model: records printed, outputs written. True when it went through without error. */
async function predictOne(
  fer: FER,
  file: string,
  outputs: Outputs,
  plan: VideoPlan,
  opts: Record<string, unknown>,
  stopping: { analysis?: VideoAnalysis; encoder?: VideoEncoder; interrupted: boolean },
): Promise<boolean> {
  const fps = (opts.fps as number | undefined) ?? VIDEO_DEFAULTS.fps;
  const labels = fer.metadata.labels;
  const analysis = fer.predictVideo(file, {
    fps,
    smooth: opts.smooth as number | undefined,
    threshold: opts.threshold as number,
    align: (opts.align as boolean) && opts.margin === undefined,
    ...(opts.margin !== undefined ? { margin: opts.margin as number } : {}),
  });
  stopping.analysis = analysis;
  const timeline = outputs.timeline ? new TimelineData() : undefined;
  let bar: SingleBar | undefined;
  let ok = true;
  const fail = (message: string) => {
    ok = false;
    bar?.stop();
    process.stderr.write(`adcorre-predict: ${message}\n`);
  };
  try {
    for await (const { record, frame } of analysis.frames()) {
      if (!bar && process.stderr.isTTY && analysis.info && Number.isFinite(analysis.info.duration)) {
        bar = new SingleBar({
          format: `${printable(basename(file))} [{bar}] {value}/{total} frames | {eta_formatted} left`,
          stream: process.stderr,
          clearOnComplete: true,
        });
        bar.start(Math.max(1, Math.ceil(analysis.info.duration * fps)), 0);
      }
      printFrame(record, opts, labels);
      timeline?.add(record);
      if (outputs.annotate && analysis.info) {
        stopping.encoder ??= VideoEncoder.start(
          plan.ffmpeg,
          outputs.annotate,
          { ...frame, fps },
          '--annotate',
          plan.videos,
        );
        await stopping.encoder.write(await drawFrame(frame, record, analysis.info));
      }
      bar?.increment();
    }
  } catch (err) {
    if (!stopping.interrupted) fail(printable(describeError(err).message)); // frames before it were printed
  }
  bar?.stop();
  if (stopping.interrupted) return false;
  if (stopping.encoder) {
    try {
      const out = await stopping.encoder.finish();
      if (!ok) process.stderr.write(`adcorre-predict: ${printable(out)}: annotated up to the error\n`);
    } catch (err) {
      fail(printable(describeError(err).message));
    }
    stopping.encoder = undefined;
  }
  const tracks = analysis.summary();
  printSummary(file, tracks, opts);
  if (outputs.timeline && timeline)
    try {
      await writeTimeline(outputs.timeline, timelineSvg(basename(file), timeline, tracks, labels), '--timeline');
    } catch (err) {
      fail(printable(describeError(err).message));
    }
  return ok;
}

/** The videos of a plan, one after the other; how many failed. Ctrl-C ends them (exit status 130). */
export async function predictVideos(
  fer: FER,
  plan: VideoPlan,
  opts: Record<string, unknown>,
): Promise<{ failed: number; interrupted: boolean }> {
  const stopping: { analysis?: VideoAnalysis; encoder?: VideoEncoder; interrupted: boolean } = { interrupted: false };
  const onInterrupt = () => {
    stopping.interrupted = true;
    void stopping.analysis?.stop();
    void stopping.encoder?.abort();
  };
  process.on('SIGINT', onInterrupt);
  if (opts.csv)
    write(
      [
        'file',
        'frame',
        'time',
        'track',
        'x',
        'y',
        'width',
        'height',
        'label',
        'confidence',
        ...fer.metadata.labels.map((l) => csvField(shown(l))),
      ].join(','),
    );
  let failed = 0;
  try {
    for (const [i, file] of plan.videos.entries()) {
      if (stopping.interrupted) break;
      if (!(await predictOne(fer, file, plan.outputs[i], plan, opts, stopping))) failed++;
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    await stopping.encoder?.abort();
  }
  return { failed, interrupted: stopping.interrupted };
}
