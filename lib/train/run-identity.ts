// What a run trains on, beyond its options: the data (its training and validation samples) and the teacher's
// file. Checkpoints record both, and a resume on other data or with another teacher file is refused, naming the
// option: it would continue silently on what the run never saw. The data is recognised by its samples, not its
// path (a dataset moved or mounted elsewhere still resumes): their count, and a digest of each one's label and
// file (relative to the dataset) or row; the teacher by a digest of its bytes (a copy elsewhere still resumes).
import { createHash } from 'node:crypto';
import { relative } from 'node:path';
import type { Dataset, Split } from '../data/dataset.js';
import { readModelFile } from '../infer/model-check.js';

export interface RunIdentity {
  data: { train: number; val: number; digest: string };
  /** the teacher model's SHA-256, with --teacher */
  teacher?: string;
}

const sha256 = (hash: ReturnType<typeof createHash>) => hash.digest('hex');

/** The data's identity: its splits' sample counts and a digest of their samples, in order. */
export function dataIdentity(dataset: Dataset, train: Split, val: Split): RunIdentity['data'] {
  const hash = createHash('sha256');
  for (const split of [train, val]) {
    hash.update(`${split.samples.length}\n`);
    for (const s of split.samples) {
      const source = typeof s.source === 'number' ? `#${s.source}` : relative(dataset.path, s.source);
      hash.update(`${s.label}\t${source}\t${s.box ? JSON.stringify(s.box) : ''}\n`);
    }
  }
  return { train: train.samples.length, val: val.samples.length, digest: sha256(hash) };
}

/** The run's identity (see the top of this file); the teacher's file read as Teacher.open reads it. */
export function runIdentity(teacher: string | undefined, dataset: Dataset, train: Split, val: Split): RunIdentity {
  const data = dataIdentity(dataset, train, val);
  if (teacher === undefined) return { data };
  return { data, teacher: sha256(createHash('sha256').update(readModelFile(teacher, 'teacher'))) };
}

const images = (d: RunIdentity['data']) => `${d.train} training and ${d.val} validation images`;

/**
 * Why `now` cannot resume a run of identity `was`: the option and what differs, or undefined when it can. What
 * the checkpoint does not record (written before identities were) is not compared.
 */
export function identityChange(
  was: Partial<RunIdentity> | undefined,
  now: RunIdentity,
): { option: 'data' | 'teacher'; expected: string; received: string } | undefined {
  if (was?.data && was.data.digest !== now.data.digest) {
    const same = was.data.train === now.data.train && was.data.val === now.data.val;
    return {
      option: 'data',
      expected: `the run's data (${images(was.data)})`,
      received: same ? `other images or labels (as many: ${images(now.data)})` : images(now.data),
    };
  }
  if (was?.teacher && now.teacher && was.teacher !== now.teacher)
    return {
      option: 'teacher',
      expected: `the run's teacher model (SHA-256 ${was.teacher.slice(0, 12)}...)`,
      received: `another model (SHA-256 ${now.teacher.slice(0, 12)}...)`,
    };
  return undefined;
}
