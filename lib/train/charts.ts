// Training curves and the confusion matrix as PNG (SVG drawn here, rendered by sharp).
import sharp from 'sharp';
import { writeFileAtomic } from '../io.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

export function lineChartSvg(
  title: string,
  xLabel: string,
  series: { name: string; values: number[] }[],
  width = 640,
  height = 360,
): string {
  const pad = { l: 56, r: 130, t: 36, b: 40 };
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  const n = Math.max(1, ...series.map((s) => s.values.length));
  const lo = Math.min(0, ...all),
    hi = Math.max(1e-9, ...all);
  const x = (i: number) => pad.l + (n === 1 ? 0.5 : i / (n - 1)) * (width - pad.l - pad.r);
  const y = (v: number) => height - pad.b - ((v - lo) / (hi - lo)) * (height - pad.t - pad.b);
  const parts = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-family="sans-serif" font-size="15">${esc(title)}</text>`,
    `<line x1="${pad.l}" y1="${height - pad.b}" x2="${width - pad.r}" y2="${height - pad.b}" stroke="#444"/>`,
    `<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${height - pad.b}" stroke="#444"/>`,
    `<text x="${(pad.l + width - pad.r) / 2}" y="${height - 8}" text-anchor="middle" font-family="sans-serif" font-size="12">${esc(xLabel)}</text>`,
  ];
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    parts.push(
      `<text x="${pad.l - 6}" y="${y(v) + 4}" text-anchor="end" font-family="sans-serif" font-size="11">${v.toPrecision(3)}</text>`,
    );
  }
  series.forEach((s, si) => {
    const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    const color = COLORS[si % COLORS.length];
    parts.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"/>`);
    parts.push(
      `<text x="${width - pad.r + 10}" y="${pad.t + 16 * si + 10}" font-family="sans-serif" font-size="12" fill="${color}">${esc(s.name)}</text>`,
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

export function confusionSvg(title: string, labels: string[], confusion: number[][]): string {
  const cell = 56,
    left = 90,
    top = 70;
  const size = labels.length * cell;
  // wide enough for the title too (about 0.55 em per character of 15 px sans-serif)
  const width = Math.max(left + size + 20, Math.ceil(title.length * 8.5) + 20),
    height = top + size + 20;
  const parts = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-family="sans-serif" font-size="15">${esc(title)}</text>`,
    `<text x="${left + size / 2}" y="44" text-anchor="middle" font-family="sans-serif" font-size="12">predicted</text>`,
  ];
  confusion.forEach((row, yi) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    parts.push(
      `<text x="${left - 6}" y="${top + yi * cell + cell / 2 + 4}" text-anchor="end" font-family="sans-serif" font-size="12">${esc(labels[yi])}</text>`,
    );
    row.forEach((v, xi) => {
      const f = v / total;
      const shade = Math.round(255 - f * 200);
      parts.push(
        `<rect x="${left + xi * cell}" y="${top + yi * cell}" width="${cell}" height="${cell}" fill="rgb(${shade},${shade},255)" stroke="#ccc"/>`,
      );
      parts.push(
        `<text x="${left + xi * cell + cell / 2}" y="${top + yi * cell + cell / 2 + 4}" text-anchor="middle" font-family="sans-serif" font-size="11">${(f * 100).toFixed(0)}%</text>`,
      );
    });
  });
  labels.forEach((l, xi) =>
    parts.push(
      `<text x="${left + xi * cell + cell / 2}" y="${top - 6}" text-anchor="middle" font-family="sans-serif" font-size="11">${esc(l.slice(0, 8))}</text>`,
    ),
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** Renders `svg` into the PNG file `path`; `option`: the flag that named it, for errors (see writeFileAtomic). */
export async function writePng(path: string, svg: string, option?: string): Promise<void> {
  writeFileAtomic(path, await sharp(Buffer.from(svg)).png().toBuffer(), option);
}
