// The evaluation views (config.ts's evaluationViews: the image, its mirror image, moved copies, or crops)
// in their two forms, side by side so that they stay the same: as pixels, for the training engine's
// evaluation (viewPixels), and as ONNX nodes, for the exported graph (addViewNodes). The tests compare the
// two on the same images.
import { attr, type GraphBuilder } from './onnx-graph.js';
import { type EvaluationView, evaluationViews, imageInViews, type XceptionConfig } from './config.js';

// ---- as pixels (the engine)

/**
 * An evaluation view of NCHW planes of side `size`: each plane mirrored
 * left-right when view.flip, then moved by (dx, dy) pixels with the edge
 * pixels repeated (ONNX Pad's 'edge' mode, as in the exported graph).
 */
export function viewPixels(images: Float32Array, size: number, view: EvaluationView): Float32Array {
  if (view.crop) return cropPixels(images, size, view.flip, view.crop);
  const out = new Float32Array(images.length);
  const clamp = (v: number) => Math.min(size - 1, Math.max(0, v));
  const column = Int32Array.from({ length: size }, (_, x) => {
    const from = clamp(x - view.dx);
    return view.flip ? size - 1 - from : from;
  });
  for (let plane = 0; plane < images.length; plane += size * size) {
    for (let y = 0; y < size; y++) {
      const src = plane + clamp(y - view.dy) * size,
        dst = plane + y * size;
      for (let x = 0; x < size; x++) out[dst + x] = images[src + column[x]];
    }
  }
  return out;
}

/**
 * A crop view of NCHW planes of side `size`: the square of side crop.size at
 * (crop.left, crop.top) of each plane (mirrored left-right first when flip)
 * resized to size x size as ONNX Resize does it (mode 'linear',
 * coordinate_transformation_mode 'half_pixel': output pixel x samples the
 * crop at (x + 0.5) crop.size / size - 0.5, clamped to the crop, bilinearly).
 */
function cropPixels(
  images: Float32Array,
  size: number,
  flip: boolean,
  crop: NonNullable<EvaluationView['crop']>,
): Float32Array {
  // per output coordinate: the two source indices (in the plane) and the second one's weight
  const axis = (offset: number, mirror: boolean) => {
    const lo = new Int32Array(size),
      hi = new Int32Array(size),
      w = new Float64Array(size);
    const place = (i: number) => (mirror ? size - 1 - (offset + i) : offset + i);
    for (let x = 0; x < size; x++) {
      const at = Math.min(crop.size - 1, Math.max(0, ((x + 0.5) * crop.size) / size - 0.5));
      const i0 = Math.floor(at);
      lo[x] = place(i0);
      hi[x] = place(Math.min(i0 + 1, crop.size - 1));
      w[x] = at - i0;
    }
    return { lo, hi, w };
  };
  const cx = axis(crop.left, flip),
    cy = axis(crop.top, false);
  const out = new Float32Array(images.length);
  for (let plane = 0; plane < images.length; plane += size * size) {
    for (let y = 0; y < size; y++) {
      const r0 = plane + cy.lo[y] * size,
        r1 = plane + cy.hi[y] * size,
        wy = cy.w[y];
      for (let x = 0; x < size; x++) {
        const a = images[r0 + cx.lo[x]],
          b = images[r0 + cx.hi[x]],
          c = images[r1 + cx.lo[x]],
          d = images[r1 + cx.hi[x]],
          wx = cx.w[x];
        out[plane + y * size + x] = (1 - wy) * ((1 - wx) * a + wx * b) + wy * ((1 - wx) * c + wx * d);
      }
    }
  }
  return out;
}

// ---- as ONNX nodes (the exporter)

/** How the evaluation views enter the graph: the batch they make and how many passes of the images it holds. */
export interface ViewedImages {
  /** the tensor of V x N images the networks run on */
  viewed: string;
  /** V: the views, and the image itself first where the views are crops */
  passes: number;
  /** whether the image itself is a view (else crop views: its probabilities are left out) */
  withImage: boolean;
}

/**
 * The evaluation views (evaluationViews: the image, then its mirror image and
 * moved copies) as one batch of V x N, view by view; the moves repeat the edge
 * pixels (Pad 'edge', then a Slice). Crop views: squares of the (mirrored)
 * image resized back to the input size together (linear, half-pixel centres,
 * edge pixels repeated), after the image itself, which gives the embeddings.
 */
export function addViewNodes(g: GraphBuilder, cfg: XceptionConfig, image: string): ViewedImages {
  const views = evaluationViews(cfg);
  const withImage = imageInViews(views);
  const passes = views.length + (withImage ? 0 : 1);
  const S = cfg.inputSize;
  if (!withImage) {
    if (views.some((v) => v.flip)) g.mirror(image);
    const crops = views.map((v, i) => {
      const { left, top, size } = v.crop!;
      return g.square(v.flip ? `${image}_mirrored` : image, top, left, size, `image_crop${i}`);
    });
    g.node('Concat', crops, ['image_crops'], [attr('axis', 0)]);
    g.node('Shape', ['image_crops'], ['image_crops_nc'], [attr('end', 2)]);
    g.node(
      'Concat',
      ['image_crops_nc', g.constant([2], BigInt64Array.of(BigInt(S), BigInt(S)))],
      ['image_crops_size'],
      [attr('axis', 0)],
    );
    g.node(
      'Resize',
      ['image_crops', '', '', 'image_crops_size'],
      ['image_crops_resized'],
      [attr('mode', 'linear'), attr('coordinate_transformation_mode', 'half_pixel')],
    );
    g.node('Concat', [image, 'image_crops_resized'], ['image_views'], [attr('axis', 0)]);
    return { viewed: 'image_views', passes, withImage };
  }
  if (views.length === 1) return { viewed: image, passes, withImage };
  const s = cfg.shiftAverage ?? 0;
  const padded = s ? 'image_padded' : image;
  if (s) {
    const p = BigInt(s);
    g.node(
      'Pad',
      [image, g.constant([8], BigInt64Array.of(0n, 0n, p, p, 0n, 0n, p, p))],
      [padded],
      [attr('mode', 'edge')],
    );
  }
  if (views.some((v) => v.flip)) g.mirror(padded);
  const viewNames = views.map((v, i) => {
    const source = v.flip ? `${padded}_mirrored` : padded;
    if (!s) return source;
    // output pixel (x, y) is the source's (x - dx, y - dy), at (x - dx + s, y - dy + s) in the padded plane
    return g.square(source, s - v.dy, s - v.dx, S, `image_view${i}`);
  });
  g.node('Concat', viewNames, ['image_views'], [attr('axis', 0)]);
  return { viewed: 'image_views', passes, withImage };
}
