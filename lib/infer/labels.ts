// Where each face's label goes in an annotated picture: inside the image,
// on no other label, and on no other face where that can be avoided. Pure:
// boxes, label sizes and the image size in, label rectangles out.

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A face's box clipped to the image (null when nothing of it is inside). */
export function clipBox(box: Rect, width: number, height: number): Rect | null {
  const x0 = Math.max(0, box.x),
    y0 = Math.max(0, box.y);
  const x1 = Math.min(width, box.x + box.width),
    y1 = Math.min(height, box.y + box.height);
  if (x1 <= x0 || y1 <= y0) return null;
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

function overlapArea(a: Rect, b: Rect): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

/** The rectangle moved (not resized, unless larger than the image) to lie inside the image. */
function inside(r: Rect, width: number, height: number): Rect {
  const w = Math.min(r.width, width),
    h = Math.min(r.height, height);
  return {
    x: Math.min(Math.max(r.x, 0), width - w),
    y: Math.min(Math.max(r.y, 0), height - h),
    width: w,
    height: h,
  };
}

/**
 * Label rectangles, one per face, in the order given. Faces are placed from the
 * largest; each label tries spots around its face (above, below, inside the top
 * and bottom of its box, left, right; each moved into the image), then spots
 * further away in steps of its own height, and takes the one that covers the
 * least of the other labels (weighted 100), the other faces (10) and its own
 * face (1), each step away costing a third of its area. A label never leaves
 * the image; it lands on another label or face only where every spot does.
 */
export function placeLabels(
  boxes: Rect[],
  sizes: { width: number; height: number }[],
  image: { width: number; height: number },
): Rect[] {
  const { width: W, height: H } = image;
  const faces = boxes.map((b) => clipBox(b, W, H) ?? inside({ ...b, width: 1, height: 1 }, W, H));
  const order = faces
    .map((_, i) => i)
    .sort((a, b) => faces[b].width * faces[b].height - faces[a].width * faces[a].height);
  const placed: (Rect | null)[] = faces.map(() => null);
  const gap = 2;
  for (const i of order) {
    const f = faces[i];
    const { width: w, height: h } = sizes[i];
    const spots: Rect[] = [
      { x: f.x, y: f.y - h - gap, width: w, height: h }, // above
      { x: f.x, y: f.y + f.height + gap, width: w, height: h }, // below
      { x: f.x, y: f.y, width: w, height: h }, // inside, top
      { x: f.x, y: f.y + f.height - h, width: w, height: h }, // inside, bottom
      { x: f.x - w - gap, y: f.y, width: w, height: h }, // left
      { x: f.x + f.width + gap, y: f.y, width: w, height: h }, // right
    ];
    const away = spots.map(() => 0);
    // further away: above and below in steps of the label's height, shifted sideways too
    for (let k = 1; k <= 6; k++)
      for (const dx of [0, -w / 2, w / 2]) {
        spots.push({ x: f.x + dx, y: f.y - h - gap - k * (h + gap), width: w, height: h });
        spots.push({ x: f.x + dx, y: f.y + f.height + gap + k * (h + gap), width: w, height: h });
        away.push(k, k);
      }
    let best: Rect | null = null;
    let bestCost = Infinity;
    spots.forEach((spot, rank) => {
      const r = inside(spot, W, H);
      // each step away costs as much as covering a third of the label's area of its own face
      let cost = rank * 1e-3 + (Math.abs(r.x - spot.x) + Math.abs(r.y - spot.y)) * 1e-4 + (away[rank] * w * h) / 3;
      for (const [j, other] of placed.entries()) if (other && j !== i) cost += 100 * overlapArea(r, other);
      for (const [j, face] of faces.entries()) if (j !== i) cost += 10 * overlapArea(r, face);
      cost += overlapArea(r, f);
      if (cost < bestCost) {
        bestCost = cost;
        best = r;
      }
    });
    placed[i] = best;
  }
  return placed as Rect[];
}
