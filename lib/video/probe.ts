// What a video file is, before it is decoded: recognised by its first bytes
// (a container's signature, not its name's extension), then described by
// ffprobe's JSON (size as displayed, rotation, frame rate, duration).
import { readSync } from 'node:fs';
import { printable } from '../terminal.js';
import { COMMON_ARGS, openVideoFile, runTool, toolMessage } from './ffmpeg.js';

/** A video's stream as ffprobe describes it. */
export interface VideoInfo {
  file: string;
  /** size as displayed: the coded size turned by `rotation` */
  width: number;
  height: number;
  /** degrees clockwise the player turns the coded picture (0, 90, 180, 270) */
  rotation: number;
  /** frames per second of the stream (its average rate, else its base rate) */
  fps: number;
  /** seconds; NaN when neither the container nor the stream says */
  duration: number;
  codec: string;
}

/** A video that cannot be read (probed or decoded), naming the file. `frames` decoded before the problem. */
export class VideoError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
    readonly frames = 0,
  ) {
    super(`${printable(file)}: ${reason}`);
    this.name = 'VideoError';
  }
}

// ISO BMFF brands of still images (HEIF, AVIF): 'ftyp' files the image decoder reads
const IMAGE_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1', 'avif', 'avis']);

/** Whether the first bytes of a file are those of a video container (MP4/MOV, Matroska/WebM, AVI, MPEG, FLV, Ogg). */
export function looksLikeVideo(head: Uint8Array): boolean {
  const ascii = (from: number, to: number) => String.fromCharCode(...head.subarray(from, to));
  if (head.length >= 12 && ascii(4, 8) === 'ftyp') return !IMAGE_BRANDS.has(ascii(8, 12));
  if (head.length >= 4 && head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) return true;
  if (head.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'AVI ') return true;
  if (head.length >= 4 && head[0] === 0 && head[1] === 0 && head[2] === 1 && (head[3] === 0xba || head[3] === 0xb3))
    return true; // MPEG program stream, MPEG-1/2 video
  if (head.length >= 377 && head[0] === 0x47 && head[188] === 0x47 && head[376] === 0x47) return true; // MPEG-TS
  if (head.length >= 3 && ascii(0, 3) === 'FLV') return true;
  if (head.length >= 4 && ascii(0, 4) === 'OggS') return true;
  return false;
}

/** Whether `path` is a regular file whose content is a video's (false for anything else, errors included). */
export function isVideoFile(path: string): boolean {
  let opened;
  try {
    opened = openVideoFile(path);
  } catch {
    return false;
  }
  try {
    const head = Buffer.alloc(512);
    return looksLikeVideo(head.subarray(0, readSync(opened.fd, head, 0, head.length, 0)));
  } catch {
    return false;
  } finally {
    opened.close();
  }
}

const ratio = (text: unknown): number => {
  const [a, b] = String(text ?? '')
    .split('/')
    .map(Number);
  const value = b === undefined ? a : a / b;
  return Number.isFinite(value) && value > 0 ? value : NaN;
};

/** The rotation a stream asks for, in [0, 360): the display matrix's (ffprobe >= 5) or the old `rotate` tag. */
function rotationOf(stream: Record<string, unknown>): number {
  const side = (stream.side_data_list as { rotation?: number }[] | undefined)?.find((s) => s.rotation !== undefined);
  const tags = stream.tags as Record<string, string> | undefined;
  // the display matrix gives the counter-clockwise turn, the tag the clockwise one
  const degrees = side ? -Number(side.rotation) : Number(tags?.rotate ?? 0);
  return Number.isFinite(degrees) ? (((Math.round(degrees / 90) * 90) % 360) + 360) % 360 : 0;
}

/** The video stream of a file, as ffprobe reads it; a VideoError (or InputFileProblem) naming the file otherwise. */
export async function probeVideo(ffprobe: string, file: string): Promise<VideoInfo> {
  const opened = openVideoFile(file);
  let result;
  try {
    result = await runTool(
      'ffprobe',
      ffprobe,
      [
        ...COMMON_ARGS,
        '-print_format',
        'json',
        '-show_streams',
        '-show_format',
        '-select_streams',
        'v:0',
        opened.input,
      ],
      opened.fd,
    );
  } finally {
    opened.close();
  }
  let json: { streams?: Record<string, unknown>[]; format?: Record<string, unknown> } = {};
  try {
    json = JSON.parse(result.stdout || '{}');
  } catch {
    /* reported below as unreadable */
  }
  const stream = json.streams?.[0];
  if (result.code !== 0 || !stream)
    throw new VideoError(
      file,
      stream || result.code !== 0
        ? `not a video ffprobe can read (${printable(toolMessage(result.stderr) || `exit code ${result.code}`)})`
        : 'the file holds no video stream',
    );
  const codedWidth = Number(stream.width),
    codedHeight = Number(stream.height);
  if (!(codedWidth > 0 && codedHeight > 0)) throw new VideoError(file, 'its video stream has no picture size');
  const rotation = rotationOf(stream);
  const turned = rotation === 90 || rotation === 270;
  const fps = ratio(stream.avg_frame_rate) || ratio(stream.r_frame_rate);
  const duration = Number(json.format?.duration ?? stream.duration);
  return {
    file,
    width: turned ? codedHeight : codedWidth,
    height: turned ? codedWidth : codedHeight,
    rotation,
    fps: Number.isFinite(fps) ? fps : NaN,
    duration: Number.isFinite(duration) ? duration : NaN,
    codec: String(stream.codec_name ?? 'unknown'),
  };
}
