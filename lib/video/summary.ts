// Per-track summaries: seconds on screen, share of time under each
// expression, the dominant one. Each analysed frame stands for one frame
// interval (1 / fps) of screen time.
import type { TrackSummary, VideoFrameRecord } from './types.js';

export class TrackSummaries {
  private readonly tracks = new Map<
    number,
    { first: number; last: number; frames: number; counts: Map<string, number> }
  >();

  /**
   * `labels`: every expression, so that each summary lists them all (0 where never shown);
   * `interval`: the seconds one analysed frame stands for (asked when summaries are made).
   */
  constructor(
    private readonly labels: readonly string[],
    private readonly interval: () => number,
  ) {}

  add(record: VideoFrameRecord): void {
    for (const face of record.faces) {
      let t = this.tracks.get(face.track);
      if (!t) {
        t = { first: record.time, last: record.time, frames: 0, counts: new Map() };
        this.tracks.set(face.track, t);
      }
      t.last = record.time;
      t.frames++;
      t.counts.set(face.label, (t.counts.get(face.label) ?? 0) + 1);
    }
  }

  /** The tracks so far, by id. */
  summaries(): TrackSummary[] {
    const interval = this.interval();
    return [...this.tracks.entries()]
      .sort(([a], [b]) => a - b)
      .map(([track, t]) => {
        const shares = Object.fromEntries(this.labels.map((l) => [l, (t.counts.get(l) ?? 0) / t.frames]));
        const dominant = this.labels.reduce((best, l) => (shares[l] > shares[best] ? l : best), this.labels[0]);
        return {
          track,
          seconds: t.frames * interval,
          first: t.first,
          last: t.last,
          frames: t.frames,
          shares,
          dominant,
        };
      });
  }
}
