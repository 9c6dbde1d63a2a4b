// A frame of the annotated copy: each face's box, track id and label drawn
// by the photos' overlay (lib/infer/annotate.ts), one colour per track.
import sharp from 'sharp';
import { overlaySvg } from '../infer/annotate.js';
import type { DecodedFrame } from './decode.js';
import type { VideoFrameRecord } from './types.js';

/** The frame's RGB with its faces drawn; `video` is the size the record's boxes are in. */
export async function drawFrame(
  frame: DecodedFrame,
  record: VideoFrameRecord,
  video: { width: number; height: number },
): Promise<Buffer> {
  const sx = frame.width / video.width,
    sy = frame.height / video.height;
  const faces = record.faces.map((f) => ({
    box: { x: f.box.x * sx, y: f.box.y * sy, width: f.box.width * sx, height: f.box.height * sy },
    label: `#${f.track} ${f.label}`,
    confidence: f.confidence,
    top: [],
  }));
  const svg = overlaySvg(
    { width: frame.width, height: frame.height, faces },
    { colours: record.faces.map((f) => f.track - 1) },
  );
  return sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .removeAlpha()
    .raw()
    .toBuffer();
}
