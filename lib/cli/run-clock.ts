// How long a training run has taken in this process and about how long it has left: adcorre-train's epoch lines
// say it, as a run of a few hundred epochs takes hours (the progress bar's ETA covers one epoch only).

/** 45s, 12m05s, 4h10m */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600),
    m = Math.floor((s % 3600) / 60);
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

export class RunClock {
  /**
   * @param startEpoch the epochs already done when this process started (fractional after a mid-epoch resume:
   *   the run's epoch plus its next batch / batches per epoch)
   */
  constructor(
    private readonly startEpoch: number,
    private readonly startedAt = Date.now(),
  ) {}

  /** After `epoch` of `epochs` (1-based: the epochs done): "12m30s so far, about 4h10m left" (the epochs' mean pace). */
  describe(epoch: number, epochs: number, now = Date.now()): string {
    const elapsed = (now - this.startedAt) / 1000;
    const done = epoch - this.startEpoch;
    const left = done > 0 ? ((epochs - epoch) * elapsed) / done : NaN;
    return `${formatDuration(elapsed)} so far${epoch < epochs && Number.isFinite(left) ? `, about ${formatDuration(left)} left` : ''}`;
  }
}
