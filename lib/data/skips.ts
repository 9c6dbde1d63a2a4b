// Bad data is skipped and counted, never a crash in the middle of an epoch; in
// strict mode the first bad item stops the run with its file and line.

export type SkipReason =
  | 'missing file'
  | 'empty file'
  | 'corrupt image'
  | 'unknown label'
  | 'malformed row'
  | 'box outside image'
  | 'broken link'
  | 'unreadable folder'
  | 'unlabelled image'
  // a device, named pipe, socket or folder where an image file was named (never read: /dev/zero has no end)
  | 'not a regular file'
  // a name that is not valid UTF-8: Node.js lists it with U+FFFD in place of the bad bytes and cannot open it
  | 'unusable file name';

/** Thrown in strict mode, and for errors that make a whole dataset unusable. */
export class DataError extends Error {
  constructor(
    message: string,
    readonly where?: string,
  ) {
    super(message);
    this.name = 'DataError';
  }
}

export interface SkipSummary {
  /** bad items, per reason */
  skipped: Partial<Record<SkipReason, number>>;
  /** items left out by the dataset's own rules (AffectNet none/uncertain/no-face, FER+ ties, contempt in 7 classes) */
  excluded: Record<string, number>;
  /** the first few bad items per reason: where and what */
  examples: Partial<Record<SkipReason, string[]>>;
}

export class SkipReport {
  private readonly counts = new Map<SkipReason, number>();
  private readonly excludedCounts = new Map<string, number>();
  private readonly exampleLists = new Map<SkipReason, string[]>();

  constructor(readonly strict = false) {}

  /** Records a bad item (throws DataError in strict mode). */
  skip(reason: SkipReason, where: string, detail = ''): void {
    const text = `${where}: ${reason}${detail ? ` (${detail})` : ''}`;
    if (this.strict) throw new DataError(`Bad data at ${text}`, where);
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    const list = this.exampleLists.get(reason) ?? [];
    if (list.length < 5) list.push(text);
    this.exampleLists.set(reason, list);
  }

  /** Records an item left out by the dataset's rules (never an error). */
  exclude(what: string): void {
    this.excludedCounts.set(what, (this.excludedCounts.get(what) ?? 0) + 1);
  }

  get total(): number {
    let t = 0;
    for (const v of this.counts.values()) t += v;
    return t;
  }

  merge(other: SkipSummary): void {
    for (const [reason, count] of Object.entries(other.skipped) as [SkipReason, number][]) {
      this.counts.set(reason, (this.counts.get(reason) ?? 0) + count);
      const list = this.exampleLists.get(reason) ?? [];
      for (const e of other.examples[reason] ?? []) if (list.length < 5) list.push(e);
      this.exampleLists.set(reason, list);
    }
    for (const [what, count] of Object.entries(other.excluded)) {
      this.excludedCounts.set(what, (this.excludedCounts.get(what) ?? 0) + count);
    }
  }

  summary(): SkipSummary {
    return {
      skipped: Object.fromEntries(this.counts),
      excluded: Object.fromEntries(this.excludedCounts),
      examples: Object.fromEntries(this.exampleLists),
    };
  }

  /** One line per reason, for the end of a pass. */
  format(): string {
    const lines: string[] = [];
    for (const [reason, count] of this.counts) {
      lines.push(`  skipped ${count} (${reason}), e.g. ${this.exampleLists.get(reason)?.[0] ?? ''}`);
    }
    for (const [what, count] of this.excludedCounts) lines.push(`  excluded ${count} (${what})`);
    return lines.length ? lines.join('\n') : '  nothing skipped';
  }
}
