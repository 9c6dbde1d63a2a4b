// Checkpoints: one file holding the engine state (weights with batch-norm
// statistics, Adam moments, step count), the confusion tracker, the epoch
// and batch to resume at, the full configuration and the metrics so far.
// Layout (format 2): "ADCORRE-CKPT 2\n", the SHA-256 of everything after it
// (32 bytes), a uint32 header length, the JSON header, then the float32 data.
// The checksum covers the header too: an edited epoch, step or configuration
// is refused like a damaged weight. Format 1 ("ADCORRE-CKPT 1\n", written
// until then) is still read: its checksum (in the header) covers only the
// data, so its header is checked for plausible values alone; the trainer's
// next save writes format 2. Written atomically (temporary file, fsync,
// rename): a crash leaves the last good one intact. Reading checks every
// tensor against the configuration's architecture, so that an error names the
// file and the parameter rather than failing later inside the engine.
// With a weight average (--ema), the weights ('w') are the averaged ones, the
// model that is evaluated and exported (adcorre-export, --init read them as
// any checkpoint's), and an optional section of kind 'r' holds the raw
// training weights that a --resume continues from (meta.ema: the decay and
// update count). A checkpoint without 'r' entries reads as before.
import { createHash } from 'node:crypto';
import type { EngineState } from '../engine/engine.js';
import { InputFileProblem, readInputFileSync } from '../input-file.js';
import { writeFileAtomic } from '../io.js';
import { buildArchitecture } from '../model/architecture.js';
import { validateConfig } from '../model/config.js';
import type { Weights } from '../model/weights.js';
import { printable } from '../terminal.js';
import { isPlainObject, OptionError } from '../validate.js';

const MAGIC_PREFIX = 'ADCORRE-CKPT ';
const MAGIC = `${MAGIC_PREFIX}2\n`;
const MAGIC_V1 = `${MAGIC_PREFIX}1\n`;
const DIGEST_BYTES = 32;
/** The most bytes a checkpoint may have (weights, Adam's moments and a weight average of some 130 M parameters). */
export const MAX_CHECKPOINT_BYTES = 2 ** 31 - 1;

export interface CheckpointMeta {
  /** the trainer's full options, config included */
  options: Record<string, unknown>;
  /** what the engine that wrote it computed in ('auto' resolved; options.precision is what was asked for) */
  precision?: 'fp32' | 'bf16';
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
  /** with a weight average: its decay, warm-up and update count (the weights are the average; raw ones in 'r') */
  ema?: { decay: number; warmup: boolean; updates: number };
  /** with the plateau schedule: its state (lib/train/schedule.ts PlateauState) */
  plateau?: Record<string, unknown>;
  /** what the run trains on: its data and teacher (lib/train/run-identity.ts RunIdentity) */
  identity?: Record<string, unknown>;
}

interface TensorEntry {
  name: string;
  kind: 'w' | 'm' | 'v' | 'r';
  offset: number;
  length: number;
}

/** How a tensor kind is named in messages: weights[i], m[i], v[i] (Adam's first and second moments), raw[i]. */
const KIND_NAME = { w: 'weights', m: 'm', v: 'v', r: 'raw' } as const;

/**
 * `raw`: with a weight average, the raw training weights (state.weights then holds the average, the model);
 * written as the optional 'r' section.
 */
export function encodeCheckpoint(state: EngineState, meta: CheckpointMeta, raw?: Weights): Uint8Array {
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
    const r = raw?.get(name);
    if (r) add(name, 'r', r);
  }
  const header = Buffer.from(JSON.stringify({ meta, steps: state.steps, entries }));
  const magic = Buffer.from(MAGIC);
  const body = magic.length + DIGEST_BYTES;
  const out = new Uint8Array(body + 4 + header.length + offset * 4);
  out.set(magic, 0);
  new DataView(out.buffer).setUint32(body, header.length, true);
  out.set(header, body + 4);
  let at = body + 4 + header.length;
  for (const a of arrays) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    at += a.byteLength;
  }
  out.set(createHash('sha256').update(out.subarray(body)).digest(), magic.length);
  return out;
}

/** `option`: the flag that named the file, for errors (see writeFileAtomic). */
export function writeCheckpoint(
  path: string,
  state: EngineState,
  meta: CheckpointMeta,
  option?: string,
  raw?: Weights,
): void {
  writeFileAtomic(path, encodeCheckpoint(state, meta, raw), option);
}

/**
 * Reads and checks a checkpoint. Every error starts with `checkpoint <path>:`
 * and names the field or parameter at fault, except, when `option` is given
 * (the flag or argument that named the file), an input that is not a regular
 * file (a device, a pipe, a folder: refused before any read), which is an
 * OptionError under it (a usage error).
 */
export function readCheckpoint(
  path: string,
  option?: string,
): { state: EngineState; meta: CheckpointMeta; raw?: Weights } {
  const bad = (text: string) => new Error(`checkpoint ${printable(path)}: ${text}`);
  let file: Buffer;
  try {
    file = readInputFileSync(path, MAX_CHECKPOINT_BYTES, 'a checkpoint');
  } catch (err) {
    if (!(err instanceof InputFileProblem)) throw err;
    const reason = err.kind === 'folder' ? 'a folder, not a regular file' : err.reason;
    throw option === undefined ? bad(reason) : new OptionError(option, 'a checkpoint file', printable(path), reason);
  }
  const prefix = Buffer.from(MAGIC_PREFIX);
  if (!file.subarray(0, prefix.length).equals(prefix)) throw bad('not an adcorre-native checkpoint');
  let version: 1 | 2;
  if (file.subarray(0, MAGIC.length).equals(Buffer.from(MAGIC))) version = 2;
  else if (file.subarray(0, MAGIC_V1.length).equals(Buffer.from(MAGIC_V1))) version = 1;
  else {
    const line = file
      .subarray(prefix.length, prefix.length + 16)
      .toString('latin1')
      .split('\n')[0];
    throw bad(
      `written in checkpoint format '${printable(line)}', which this version does not read (it reads formats 1 and 2)`,
    );
  }
  const damaged = bad('damaged checkpoint (checksum mismatch; the file is truncated, corrupted or was edited)');
  const lengthAt = version === 2 ? MAGIC.length + DIGEST_BYTES : MAGIC_V1.length;
  if (file.length < lengthAt + 4) throw damaged;
  if (version === 2) {
    const digest = createHash('sha256')
      .update(file.subarray(MAGIC.length + DIGEST_BYTES))
      .digest();
    if (!digest.equals(file.subarray(MAGIC.length, MAGIC.length + DIGEST_BYTES))) throw damaged;
  }
  const start = lengthAt + 4 + file.readUInt32LE(lengthAt);
  if (start > file.length) throw bad('damaged checkpoint header (longer than the file)');
  let header: unknown;
  try {
    header = JSON.parse(file.subarray(lengthAt + 4, start).toString('utf8'));
  } catch {
    throw bad('damaged checkpoint header (not JSON)');
  }
  if (!isPlainObject(header) || !isPlainObject(header.meta) || !Array.isArray(header.entries))
    throw bad('damaged checkpoint header (expected meta and entries)');
  const bytes = file.subarray(start);
  if (version === 1 && createHash('sha256').update(bytes).digest('hex') !== header.sha256) throw damaged;
  if (bytes.length % 4 !== 0) throw bad(`damaged checkpoint: ${bytes.length} bytes of data, not whole float32 values`);
  const meta = checkMeta(header.meta, bad);
  const steps = header.steps;
  if (!Number.isSafeInteger(steps) || (steps as number) < 0)
    throw bad(
      `Expected a non-negative integer for steps but received ${printable(JSON.stringify(steps) ?? 'nothing')}`,
    );

  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const entries = checkEntries(header.entries, data.length, bad);
  // every tensor against the architecture the configuration builds, named by kind, index and parameter
  let config;
  try {
    config = validateConfig((meta.options as { config?: unknown }).config, 'options.config');
  } catch (err) {
    throw bad((err as Error).message);
  }
  const params = buildArchitecture(config).params;
  const known = new Set(params.map((p) => p.name));
  for (const e of entries.values()) {
    if (!known.has(e.name))
      throw bad(
        `${KIND_NAME[e.kind]} for a parameter ${printable(e.name)} that options.config's architecture does not have`,
      );
  }
  const hasMoments = [...entries.values()].some((e) => e.kind === 'm' || e.kind === 'v');
  const hasRaw = [...entries.values()].some((e) => e.kind === 'r');
  const raw = new Map<string, Float32Array>();
  const weights = new Map<string, Float32Array>();
  const moments = new Map<string, { m: Float32Array; v: Float32Array }>();
  params.forEach((p, i) => {
    const size = p.shape.reduce((a, b) => a * b, 1);
    const tensor = (kind: TensorEntry['kind']) => {
      const what = `${KIND_NAME[kind]}[${i}] (${p.name}, shape ${p.shape.join('x')})`;
      const e = entries.get(`${kind}:${p.name}`);
      if (!e) throw bad(`Expected ${size} values for ${what} but received none (missing)`);
      if (e.length !== size) throw bad(`Expected ${size} values for ${what} but received ${e.length}`);
      return data.slice(e.offset, e.offset + e.length);
    };
    weights.set(p.name, tensor('w'));
    // the optimiser state is all or nothing: a checkpoint without it still exports, never resumes half-restored
    if (hasMoments) moments.set(p.name, { m: tensor('m'), v: tensor('v') });
    // so are the raw weights under an average
    if (hasRaw) raw.set(p.name, tensor('r'));
  });
  return { state: { weights, moments, steps: steps as number }, meta, ...(hasRaw ? { raw } : {}) };
}

/** The header's tensor list: well-formed entries inside the data, each kind and name once. */
function checkEntries(list: unknown[], floats: number, bad: (text: string) => Error): Map<string, TensorEntry> {
  const entries = new Map<string, TensorEntry>();
  list.forEach((e, i) => {
    const at = `entries[${i}]`;
    if (
      !isPlainObject(e) ||
      typeof e.name !== 'string' ||
      (e.kind !== 'w' && e.kind !== 'm' && e.kind !== 'v' && e.kind !== 'r') ||
      !Number.isSafeInteger(e.offset) ||
      !Number.isSafeInteger(e.length) ||
      (e.offset as number) < 0 ||
      (e.length as number) < 0
    )
      throw bad(`damaged checkpoint header: ${at} is not a tensor entry (name, kind w/m/v/r, offset, length)`);
    const entry = e as unknown as TensorEntry;
    const what = `${at} (${KIND_NAME[entry.kind]} of ${printable(entry.name)})`;
    if (entry.offset + entry.length > floats)
      throw bad(`${what} lies beyond the data: values ${entry.offset} to ${entry.offset + entry.length} of ${floats}`);
    const key = `${entry.kind}:${entry.name}`;
    if (entries.has(key)) throw bad(`${what} is there twice`);
    entries.set(key, entry);
  });
  return entries;
}

/** The header's values the trainer acts on, of their types and in their ranges (format 1 has no checksum over them). */
function checkMeta(meta: Record<string, unknown>, bad: (text: string) => Error): CheckpointMeta {
  const received = (v: unknown) => printable(JSON.stringify(v) ?? 'nothing');
  if (!isPlainObject(meta.options) || !isPlainObject(meta.options.config))
    throw bad(`Expected an object with the run's config for options but received ${received(meta.options)}`);
  const integer = (key: 'epoch' | 'batch' | 'step', max = Number.MAX_SAFE_INTEGER, why = '') => {
    const v = meta[key];
    if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > max)
      throw bad(
        `Expected an integer in [0, ${max === Number.MAX_SAFE_INTEGER ? 'inf)' : `${max}]`}${why} for ${key} but received ${received(v)}`,
      );
  };
  const epochs = meta.options.epochs;
  if (Number.isSafeInteger(epochs) && (epochs as number) >= 0)
    integer('epoch', epochs as number, " (the run's epochs)");
  else integer('epoch');
  integer('batch');
  integer('step');
  if (!Array.isArray(meta.history)) throw bad(`Expected an array for history but received ${received(meta.history)}`);
  if (
    meta.best !== null &&
    !(isPlainObject(meta.best) && Number.isFinite(meta.best.accuracy) && Number.isSafeInteger(meta.best.epoch))
  )
    throw bad(`Expected null or { accuracy, epoch } for best but received ${received(meta.best)}`);
  const ema = meta.ema;
  if (
    ema !== undefined &&
    !(
      isPlainObject(ema) &&
      typeof ema.decay === 'number' &&
      ema.decay > 0 &&
      ema.decay < 1 &&
      typeof ema.warmup === 'boolean' &&
      Number.isSafeInteger(ema.updates) &&
      (ema.updates as number) >= 0
    )
  )
    throw bad(`Expected { decay in (0, 1), warmup, updates } for ema but received ${received(ema)}`);
  return meta as unknown as CheckpointMeta;
}
