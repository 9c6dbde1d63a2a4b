// --timeline: each track's expression probabilities over time, one panel per
// track (the longest on screen first), one line per expression, as an SVG
// rendered to PNG by sharp and written atomically.
import sharp from 'sharp';
import { writeFileAtomic } from '../io.js';
import type { TrackSummary, VideoFrameRecord } from './types.js';

/** Panels drawn at most: a crowd's short-lived tracks would make the picture unreadable. */
export const TIMELINE_TRACKS = 8;
const WIDTH = 1000;
const PANEL = 150;
const LEFT = 48;
const RIGHT = 130;
const GAP = 34;
const LINE_COLOURS = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
];

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Collects each track's probabilities frame by frame. */
export class TimelineData {
  readonly points = new Map<number, { time: number; p: Record<string, number> }[]>();
  duration = 0;

  add(record: VideoFrameRecord): void {
    this.duration = Math.max(this.duration, record.time);
    for (const f of record.faces) {
      const list = this.points.get(f.track) ?? [];
      list.push({ time: record.time, p: f.probabilities });
      this.points.set(f.track, list);
    }
  }
}

function ticks(end: number): number[] {
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].find((s) => end / s <= 10) ?? 7200;
  return Array.from({ length: Math.floor(end / step) + 1 }, (_, i) => i * step);
}

/** The plot as SVG: the `TIMELINE_TRACKS` tracks longest on screen, by id. */
export function timelineSvg(
  title: string,
  data: TimelineData,
  summaries: TrackSummary[],
  labels: readonly string[],
): string {
  const shown = [...summaries]
    .sort((a, b) => b.seconds - a.seconds || a.track - b.track)
    .slice(0, TIMELINE_TRACKS)
    .sort((a, b) => a.track - b.track);
  const end = Math.max(data.duration, 1e-6);
  const plotWidth = WIDTH - LEFT - RIGHT;
  const height = 40 + Math.max(1, shown.length) * (PANEL + GAP);
  const x = (t: number) => LEFT + (t / end) * plotWidth;
  const parts = [
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="${LEFT}" y="24" font-size="16" font-family="sans-serif">${escape(title)}${summaries.length > shown.length ? ` (the ${shown.length} tracks longest on screen of ${summaries.length})` : ''}</text>`,
  ];
  if (!shown.length)
    parts.push(`<text x="${LEFT}" y="80" font-size="14" font-family="sans-serif">no face found</text>`);
  shown.forEach((s, k) => {
    const top = 40 + k * (PANEL + GAP) + 18;
    const y = (p: number) => top + (1 - p) * PANEL;
    parts.push(
      `<text x="${LEFT}" y="${top - 6}" font-size="13" font-family="sans-serif">track ${s.track}: ${s.seconds.toFixed(1)} s on screen, mostly ${escape(s.dominant)}</text>`,
      `<rect x="${LEFT}" y="${top}" width="${plotWidth}" height="${PANEL}" fill="none" stroke="#999"/>`,
    );
    for (const t of ticks(end))
      parts.push(
        `<line x1="${x(t)}" x2="${x(t)}" y1="${top + PANEL}" y2="${top + PANEL + 4}" stroke="#999"/>`,
        `<text x="${x(t)}" y="${top + PANEL + 15}" font-size="10" text-anchor="middle" font-family="sans-serif">${t} s</text>`,
      );
    for (const p of [0, 0.5, 1])
      parts.push(
        `<text x="${LEFT - 6}" y="${y(p) + 4}" font-size="10" text-anchor="end" font-family="sans-serif">${p}</text>`,
      );
    const points = data.points.get(s.track) ?? [];
    labels.forEach((label, c) => {
      const colour = LINE_COLOURS[c % LINE_COLOURS.length];
      const path = points.map((q) => `${x(q.time).toFixed(1)},${y(q.p[label] ?? 0).toFixed(1)}`).join(' ');
      parts.push(
        `<polyline points="${path}" fill="none" stroke="${colour}" stroke-width="1.5"/>`,
        `<text x="${LEFT + plotWidth + 10}" y="${top + 12 + c * 16}" font-size="12" fill="${colour}" font-family="sans-serif">${escape(label)}</text>`,
      );
    });
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}">${parts.join('')}</svg>`;
}

/** Renders the plot to a PNG at `path`, atomically. */
export async function writeTimeline(path: string, svg: string, option: string): Promise<void> {
  writeFileAtomic(path, await sharp(Buffer.from(svg)).png().toBuffer(), option);
}
