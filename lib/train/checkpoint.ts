// Checkpoints: one file holding the engine state (weights with batch-norm
// statistics, Adam moments, step count), the confusion tracker, the epoch
// and batch to resume at, the full configuration and the metrics so far.
// Layout: "ADCORRE-CKPT 1\n", a uint32 header length, the JSON header (with
// the SHA-256 of the data), then the float32 data. Written atomically
// (temporary file, fsync, rename): a crash leaves the last good one intact.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { EngineState } from '../engine/engine.js';
import { writeFileAtomic } from '../io.js';

const MAGIC = 'ADCORRE-CKPT 1\n';

export interface CheckpointMeta {
  /** the trainer's full options, config included */
  options: Record<string, unknown>;
  /** next epoch and batch within it to run */
  epoch: number;
  batch: number;
  step: number;
  tracker: unknown;
  best: { accuracy: number; epoch: number } | null;
  history: unknown[];
  /** why it was written: 'epoch', 'interrupt', 'best' */
  reason: string;
  /** mid-epoch (batch > 0): the epoch's training sums so far, so that its reported loss covers all its steps */
  epochSums?: Record<string, number>;
}

interface TensorEntry {
  name: string;
  kind: 'w' | 'm' | 'v';
  offset: number;
  length: number;
}

export function encodeCheckpoint(state: EngineState, meta: CheckpointMeta): Uint8Array {
  const entries: TensorEntry[] = [];
  const arrays: Float32Array[] = [];
  let offset = 0;
  const add = (name: string, kind: TensorEntry['kind'], a: Float32Array) => {
    entries.push({ name, kind, offset, length: a.length });
    arrays.push(a);
    offset += a.length;
  };
  for (const [name, w] of state.weights) {
    add(name, 'w', w);
    const m = state.moments.get(name);
    if (m) {
      add(name, 'm', m.m);
      add(name, 'v', m.v);
    }
  }
  const data = new Float32Array(offset);
  let at = 0;
  for (const a of arrays) {
    data.set(a, at);
    at += a.length;
  }
  const bytes = new Uint8Array(data.buffer);
  const header = Buffer.from(
    JSON.stringify({ meta, steps: state.steps, entries, sha256: createHash('sha256').update(bytes).digest('hex') }),
  );
  const magic = Buffer.from(MAGIC);
  const out = new Uint8Array(magic.length + 4 + header.length + bytes.length);
  out.set(magic, 0);
  new DataView(out.buffer).setUint32(magic.length, header.length, true);
  out.set(header, magic.length + 4);
  out.set(bytes, magic.length + 4 + header.length);
  return out;
}

export function writeCheckpoint(path: string, state: EngineState, meta: CheckpointMeta): void {
  writeFileAtomic(path, encodeCheckpoint(state, meta));
}

export function readCheckpoint(path: string): { state: EngineState; meta: CheckpointMeta } {
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch (err) {
    throw new Error(`Cannot read checkpoint ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const magic = Buffer.from(MAGIC);
  if (file.length < magic.length + 4 || !file.subarray(0, magic.length).equals(magic)) {
    throw new Error(`${path} is not an adcorre-native checkpoint`);
  }
  const headerLength = file.readUInt32LE(magic.length);
  const start = magic.length + 4 + headerLength;
  let header: { meta: CheckpointMeta; steps: number; entries: TensorEntry[]; sha256: string };
  try {
    header = JSON.parse(file.subarray(magic.length + 4, start).toString('utf8'));
  } catch {
    throw new Error(`${path}: damaged checkpoint header`);
  }
  const bytes = file.subarray(start);
  if (createHash('sha256').update(bytes).digest('hex') !== header.sha256) {
    throw new Error(`${path}: damaged checkpoint (checksum mismatch; the file is truncated or corrupted)`);
  }
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const weights = new Map<string, Float32Array>();
  const moments = new Map<string, { m: Float32Array; v: Float32Array }>();
  for (const e of header.entries) {
    const a = data.slice(e.offset, e.offset + e.length);
    if (e.kind === 'w') weights.set(e.name, a);
    else {
      const m = moments.get(e.name) ?? { m: new Float32Array(0), v: new Float32Array(0) };
      m[e.kind] = a;
      moments.set(e.name, m);
    }
  }
  return { state: { weights, moments, steps: header.steps }, meta: header.meta };
}
