// Face identities across frames. Each track remembers where its face was,
// how fast it moved and what it looked like (a running mean of the model's
// embeddings); each new frame's faces are matched to the tracks at the least
// total cost (the Hungarian algorithm, `munkres`), the cost blending how far
// a face is from where its track was expected (box overlap and centre
// distance, by constant velocity) with how unlike the track it looks. The
// velocity carries a track through a crossing, where the boxes overlap and
// overlap alone would swap them; the appearance term settles what motion
// leaves open. A track unmatched for more than `maxMissed` frames ends; its
// id is never given again.
import { munkres } from 'munkres';
import { numberIn } from '../validate.js';

export interface TrackBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface TrackInput {
  box: TrackBox;
  /** what the face looks like: any fixed-length vector (the model's embeddings, concatenated) */
  embedding?: Float32Array;
}

export interface TrackerOptions {
  /** frames a track survives unmatched, e.g. behind another face (default 10) */
  maxMissed?: number;
  /** weight of appearance against motion in the matching cost, in [0, 1] (default 0.35) */
  appearanceWeight?: number;
  /** the highest cost still taken as the same face, in (0, 1] (default 0.75) */
  maxCost?: number;
}

export const TRACKER_DEFAULTS = { maxMissed: 10, appearanceWeight: 0.35, maxCost: 0.75 } as const;

interface Track {
  id: number;
  box: TrackBox;
  /** box centre velocity, pixels per second */
  vx: number;
  vy: number;
  time: number;
  missed: number;
  appearance?: Float32Array;
}

/** How far (in box sizes) a face may move from its predicted place and still be matched, per frame missed. */
const REACH = 1.5;
/** Weight of a new embedding in a track's running appearance. */
const APPEARANCE_RATE = 0.3;
const FAR = 1e6;

const centre = (b: TrackBox) => [b.x + b.width / 2, b.y + b.height / 2];

export function iou(a: TrackBox, b: TrackBox): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / (a.width * a.height + b.width * b.height - inter);
}

function unit(v: Float32Array): Float32Array {
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm) || 1;
  return v.map((x) => x / norm);
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot;
}

export class Tracker {
  private tracks: Track[] = [];
  private nextId = 1;
  private readonly maxMissed: number;
  private readonly appearanceWeight: number;
  private readonly maxCost: number;

  constructor(options: TrackerOptions = {}) {
    const o = { ...TRACKER_DEFAULTS, ...options };
    this.maxMissed = numberIn('options.maxMissed', o.maxMissed, { min: 0, integer: true }, 'non-negative integer');
    this.appearanceWeight = numberIn(
      'options.appearanceWeight',
      o.appearanceWeight,
      { min: 0, max: 1 },
      'number in [0, 1]',
    );
    this.maxCost = numberIn('options.maxCost', o.maxCost, { min: 0, max: 1, minExclusive: true }, 'number in (0, 1]');
  }

  /** The track id of each face of the frame at `time` seconds, in the order given; new faces get new ids. */
  update(faces: TrackInput[], time: number): number[] {
    const embeddings = faces.map((f) => (f.embedding ? unit(f.embedding) : undefined));
    const cost = this.tracks.map((t) => faces.map((f, j) => this.cost(t, f.box, embeddings[j], time)));
    const ids = new Array<number>(faces.length).fill(0);
    const matched = new Set<Track>();
    if (this.tracks.length && faces.length)
      for (const [row, col] of munkres(cost)) {
        if (cost[row][col] > this.maxCost) continue;
        const track = this.tracks[row];
        this.follow(track, faces[col].box, embeddings[col], time);
        matched.add(track);
        ids[col] = track.id;
      }
    for (const track of this.tracks) if (!matched.has(track)) track.missed++;
    this.tracks = this.tracks.filter((t) => t.missed <= this.maxMissed);
    faces.forEach((f, j) => {
      if (ids[j]) return;
      const track: Track = { id: this.nextId++, box: f.box, vx: 0, vy: 0, time, missed: 0, appearance: embeddings[j] };
      this.tracks.push(track);
      ids[j] = track.id;
    });
    return ids;
  }

  /** Where a track's face is expected at `time`: its last box moved by its velocity. */
  private predicted(track: Track, time: number): TrackBox {
    const dt = time - track.time;
    return { ...track.box, x: track.box.x + track.vx * dt, y: track.box.y + track.vy * dt };
  }

  /** The matching cost in [0, 1], or FAR where the face is out of the track's reach or of another size. */
  private cost(track: Track, box: TrackBox, embedding: Float32Array | undefined, time: number): number {
    const expected = this.predicted(track, time);
    const size = Math.max(expected.width, expected.height);
    const [ex, ey] = centre(expected),
      [cx, cy] = centre(box);
    const reach = REACH * size * (1 + track.missed);
    const distance = Math.hypot(cx - ex, cy - ey);
    const scale = Math.max(box.width, box.height) / size;
    if (distance > reach || scale > 2 || scale < 0.5) return FAR;
    const motion = 0.5 * (1 - iou(expected, box)) + 0.5 * (distance / reach);
    if (!embedding || !track.appearance) return motion;
    const unlike = (1 - cosine(embedding, track.appearance)) / 2;
    return (1 - this.appearanceWeight) * motion + this.appearanceWeight * unlike;
  }

  private follow(track: Track, box: TrackBox, embedding: Float32Array | undefined, time: number): void {
    const dt = time - track.time;
    if (dt > 0) {
      const [px, py] = centre(track.box),
        [cx, cy] = centre(box);
      // a running mean: one jittery box does not throw the prediction off
      track.vx = 0.5 * track.vx + 0.5 * ((cx - px) / dt);
      track.vy = 0.5 * track.vy + 0.5 * ((cy - py) / dt);
    }
    track.box = box;
    track.time = time;
    track.missed = 0;
    if (embedding)
      track.appearance = track.appearance
        ? unit(track.appearance.map((a, i) => (1 - APPEARANCE_RATE) * a + APPEARANCE_RATE * embedding[i]))
        : embedding;
  }
}
