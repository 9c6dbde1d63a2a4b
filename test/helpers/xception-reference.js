// A plain float64 forward pass of Xception-k in evaluation mode, op by op
// from the architecture list (unfolded batch norm, explicit padding loops):
// the independent reference the ONNX export is checked against.
//
// Written from the definitions, not from the code under test: the window
// rule and the epsilons below are TensorFlow's and Keras's, so a wrong
// constant or shape rule in the op table (native/engine/op_table.h) fails the
// comparison instead of being copied into the reference.

const BN_EPS = 1e-3; // Keras BatchNormalization's default epsilon
const L2_EPS = 1e-12; // tf.math.l2_normalize's default epsilon
const INPUT_EPS = 1e-3; // per-image standardization, as the README's model contract states

/** TensorFlow's output size: ceil(n / s) for 'same', floor((n - k) / s) + 1 for 'valid'. */
function outputSize(n, kernel, stride, padding) {
  return padding === 'same' ? Math.ceil(n / stride) : Math.floor((n - kernel) / stride) + 1;
}

/** TensorFlow's 'same' padding: the total a window needs, the odd pixel after. */
function samePadding(n, kernel, stride) {
  const total = Math.max((Math.ceil(n / stride) - 1) * stride + kernel - n, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

function conv(x, [N, C, H, W], w, op) {
  const k = op.kernel,
    s = op.stride;
  const [pt] = op.padding === 'same' ? samePadding(H, k, s) : [0];
  const [pl] = op.padding === 'same' ? samePadding(W, k, s) : [0];
  const OH = outputSize(H, k, s, op.padding),
    OW = outputSize(W, k, s, op.padding);
  const O = op.outC;
  const y = new Float64Array(N * O * OH * OW);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++) {
      const ins = op.depthwise ? [o] : Array.from({ length: C }, (_, c) => c);
      for (let oy = 0; oy < OH; oy++)
        for (let ox = 0; ox < OW; ox++) {
          let acc = 0;
          for (const [ci, c] of ins.entries())
            for (let ky = 0; ky < k; ky++)
              for (let kx = 0; kx < k; kx++) {
                const iy = oy * s + ky - pt,
                  ix = ox * s + kx - pl;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += x[((n * C + c) * H + iy) * W + ix] * w[((o * (op.depthwise ? 1 : C) + ci) * k + ky) * k + kx];
              }
          y[((n * O + o) * OH + oy) * OW + ox] = acc;
        }
    }
  return [y, [N, O, OH, OW]];
}

/**
 * An evaluation view, written out as its definition: every S x S plane of
 * `images` mirrored left-right when `flip`, then moved by (dx, dy) pixels with
 * the edge pixels repeated.
 */
export function viewOfImages(images, S, flip, dx, dy) {
  const at = (v) => Math.min(S - 1, Math.max(0, v));
  return images.map((_, i) => {
    const plane = i - (i % (S * S)),
      y = Math.floor((i % (S * S)) / S),
      x = i % S;
    const sx = flip ? S - 1 - at(x - dx) : at(x - dx);
    return images[plane + at(y - dy) * S + sx];
  });
}

/**
 * A crop view, written out as its definition: every S x S plane of `images`
 * mirrored left-right when `flip`, then its square of side `size` at (left,
 * top) resized to S x S bilinearly with half-pixel centres (output pixel x
 * samples the square at (x + 1/2) size / S - 1/2, clamped to the square).
 */
export function cropResizeImages(images, S, flip, left, top, size) {
  const pixel = (plane, y, x) => images[plane + (top + y) * S + (flip ? S - 1 - (left + x) : left + x)];
  const along = (v) => {
    const u = Math.min(size - 1, Math.max(0, ((v + 0.5) * size) / S - 0.5));
    const i = Math.floor(u);
    return [i, Math.min(i + 1, size - 1), u - i];
  };
  return images.map((_, i) => {
    const plane = i - (i % (S * S)),
      [y0, y1, fy] = along(Math.floor((i % (S * S)) / S)),
      [x0, x1, fx] = along(i % S);
    const row = (y) => (1 - fx) * pixel(plane, y, x0) + fx * pixel(plane, y, x1);
    return (1 - fy) * row(y0) + fy * row(y1);
  });
}

/** Probabilities [N, C] divided by prior^t per class, each row renormalised to sum 1 (float64). */
export function priorCorrected(probs, prior, t = 1) {
  const C = prior.length;
  const out = Float64Array.from(probs, (p, i) => p / prior[i % C] ** t);
  for (let row = 0; row < out.length; row += C) {
    const sum = out.subarray(row, row + C).reduce((a, b) => a + b, 0);
    for (let c = 0; c < C; c++) out[row + c] /= sum;
  }
  return out;
}

/** Runs the network on images [N, C, S, S] in [0, 1]; returns { probs, embeddings }. */
export function referenceForward(arch, weights, images, N) {
  const S = arch.config.inputSize,
    C = arch.config.channels;
  if (arch.config.prior) {
    const { prior, priorPower, ...rest } = arch.config;
    const out = referenceForward({ ...arch, config: rest }, weights, images, N);
    return { ...out, probs: priorCorrected(out.probs, prior, priorPower ?? 1) };
  }
  const crop = arch.config.cropAverage ?? 0;
  if (crop) {
    // the probabilities averaged over the four corner squares and the centre square (at floor(crop / 2)) of
    // side S - crop, resized to S x S, and with flipAverage the same of the mirror images; the image's own
    // embeddings
    const plain = { ...arch, config: { ...arch.config, flipAverage: false, cropAverage: 0 } };
    const size = S - crop,
      h = Math.floor(crop / 2);
    const outs = [];
    for (const flip of arch.config.flipAverage ? [false, true] : [false])
      for (const [left, top] of [
        [0, 0],
        [crop, 0],
        [0, crop],
        [crop, crop],
        [h, h],
      ])
        outs.push(referenceForward(plain, weights, cropResizeImages(images, S, flip, left, top, size), N));
    return {
      probs: outs[0].probs.map((_, i) => outs.reduce((sum, o) => sum + o.probs[i], 0) / outs.length),
      embeddings: referenceForward(plain, weights, images, N).embeddings,
    };
  }
  const shift = arch.config.shiftAverage ?? 0;
  if (arch.config.flipAverage || shift) {
    // the probabilities averaged over the image, its copies moved by `shift` pixels left, right, up and down
    // (edge pixels repeated) and, with flipAverage, the mirror images of all five; the image's own embeddings
    const plain = { ...arch, config: { ...arch.config, flipAverage: false, shiftAverage: 0 } };
    const moves = shift
      ? [
          [0, 0],
          [shift, 0],
          [-shift, 0],
          [0, shift],
          [0, -shift],
        ]
      : [[0, 0]];
    const outs = [];
    for (const flip of arch.config.flipAverage ? [false, true] : [false])
      for (const [dx, dy] of moves)
        outs.push(referenceForward(plain, weights, viewOfImages(images, S, flip, dx, dy), N));
    return {
      probs: outs[0].probs.map((_, i) => outs.reduce((sum, o) => sum + o.probs[i], 0) / outs.length),
      embeddings: outs[0].embeddings,
    };
  }
  const t = new Map();
  t.set(arch.image, [Float64Array.from(images), [N, C, S, S]]);
  const p = (name) => weights.get(name);
  for (const op of arch.ops) {
    switch (op.op) {
      case 'standardize': {
        // per image over C x S x S
        const [x, shape] = t.get(op.input);
        const per = C * S * S;
        const y = new Float64Array(x.length);
        for (let n = 0; n < N; n++) {
          const img = x.subarray(n * per, (n + 1) * per);
          const mean = img.reduce((a, v) => a + v, 0) / per;
          const variance = img.reduce((a, v) => a + (v - mean) ** 2, 0) / per;
          for (let i = 0; i < per; i++) y[n * per + i] = (img[i] - mean) / Math.sqrt(variance + INPUT_EPS);
        }
        t.set(op.output, [y, shape]);
        break;
      }
      case 'conv':
        t.set(op.output, conv(...t.get(op.input), p(`${op.name}.weight`), op));
        break;
      case 'bn': {
        const [x, shape] = t.get(op.input);
        const [, c, h, w] = shape;
        const y = new Float64Array(x.length);
        const g = p(`${op.name}.gamma`),
          b = p(`${op.name}.beta`),
          m = p(`${op.name}.mean`),
          v = p(`${op.name}.var`);
        for (let i = 0; i < x.length; i++) {
          const ch = Math.floor(i / (h * w)) % c;
          y[i] = ((x[i] - m[ch]) / Math.sqrt(v[ch] + BN_EPS)) * g[ch] + b[ch];
        }
        t.set(op.output, [y, shape]);
        break;
      }
      case 'relu': {
        const [x, s] = t.get(op.input);
        t.set(op.output, [x.map((v) => Math.max(0, v)), s]);
        break;
      }
      case 'maxpool': {
        const [x, [n, c, h, w]] = t.get(op.input);
        const [pt] = samePadding(h, 3, 2),
          [pl] = samePadding(w, 3, 2);
        const oh = outputSize(h, 3, 2, 'same'),
          ow = outputSize(w, 3, 2, 'same');
        const y = new Float64Array(n * c * oh * ow).fill(-Infinity);
        for (let i = 0; i < n * c; i++)
          for (let oy = 0; oy < oh; oy++)
            for (let ox = 0; ox < ow; ox++) {
              for (let ky = 0; ky < 3; ky++)
                for (let kx = 0; kx < 3; kx++) {
                  const iy = oy * 2 + ky - pt,
                    ix = ox * 2 + kx - pl;
                  if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                  const at = (i * oh + oy) * ow + ox;
                  y[at] = Math.max(y[at], x[(i * h + iy) * w + ix]);
                }
            }
        t.set(op.output, [y, [n, c, oh, ow]]);
        break;
      }
      case 'add': {
        const [a, s] = t.get(op.inputs[0]);
        const [b] = t.get(op.inputs[1]);
        t.set(op.output, [a.map((v, i) => v + b[i]), s]);
        break;
      }
      case 'gap': {
        const [x, [n, c, h, w]] = t.get(op.input);
        const y = new Float64Array(n * c);
        for (let i = 0; i < n * c; i++) {
          let s = 0;
          for (let j = 0; j < h * w; j++) s += x[i * h * w + j];
          y[i] = s / (h * w);
        }
        t.set(op.output, [y, [n, c]]);
        break;
      }
      case 'dense': {
        const [x, [n, f]] = t.get(op.input);
        const w = p(`${op.name}.weight`),
          b = p(`${op.name}.bias`);
        const y = new Float64Array(n * op.outF);
        for (let i = 0; i < n; i++)
          for (let o = 0; o < op.outF; o++) {
            let s = b[o];
            for (let j = 0; j < f; j++) s += x[i * f + j] * w[o * f + j];
            y[i * op.outF + o] = s;
          }
        t.set(op.output, [y, [n, op.outF]]);
        break;
      }
      case 'l2norm': {
        const [x, [n, f]] = t.get(op.input);
        const y = new Float64Array(x.length);
        for (let i = 0; i < n; i++) {
          let s = 0;
          for (let j = 0; j < f; j++) s += x[i * f + j] ** 2;
          const norm = Math.sqrt(Math.max(s, L2_EPS));
          for (let j = 0; j < f; j++) y[i * f + j] = x[i * f + j] / norm;
        }
        t.set(op.output, [y, [n, f]]);
        break;
      }
      case 'concat': {
        const parts = op.inputs.map((i) => t.get(i));
        const n = parts[0][1][0];
        const F = parts.reduce((s, [, [, f]]) => s + f, 0);
        const y = new Float64Array(n * F);
        for (let i = 0; i < n; i++) {
          let at = 0;
          for (const [x, [, f]] of parts) {
            for (let j = 0; j < f; j++) y[i * F + at + j] = x[i * f + j];
            at += f;
          }
        }
        t.set(op.output, [y, [n, F]]);
        break;
      }
      case 'dropout':
        t.set(op.output, t.get(op.input));
        break;
      case 'softmax': {
        const [x, [n, f]] = t.get(op.input);
        const y = new Float64Array(x.length);
        for (let i = 0; i < n; i++) {
          const m = Math.max(...x.subarray(i * f, (i + 1) * f));
          let s = 0;
          for (let j = 0; j < f; j++) s += y[i * f + j] = Math.exp(x[i * f + j] - m);
          for (let j = 0; j < f; j++) y[i * f + j] /= s;
        }
        t.set(op.output, [y, [n, f]]);
        break;
      }
      default:
        throw new Error(`reference: unknown op ${op.op}`);
    }
  }
  return { probs: t.get('probs')[0], embeddings: t.get('embeddings')[0] };
}
