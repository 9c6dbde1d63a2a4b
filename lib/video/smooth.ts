// Temporal smoothing of each track's probabilities: an exponential moving
// average whose time constant is `seconds`, weighted by the time between
// frames (alpha = 1 - exp(-dt / seconds)), so that the smoothing means the
// same at any analysed rate and across frames a track was missed.

export class ProbabilitySmoother {
  private readonly state = new Map<number, { time: number; p: Record<string, number> }>();

  /** `seconds` 0 gives the raw probabilities back. */
  constructor(private readonly seconds: number) {}

  /** The track's smoothed probabilities at `time`, with these raw ones taken in. */
  next(track: number, time: number, probabilities: Record<string, number>): Record<string, number> {
    if (this.seconds <= 0) return probabilities;
    const last = this.state.get(track);
    if (!last) {
      this.state.set(track, { time, p: { ...probabilities } });
      return { ...probabilities };
    }
    const alpha = 1 - Math.exp(-Math.max(0, time - last.time) / this.seconds);
    const p: Record<string, number> = {};
    for (const [label, value] of Object.entries(probabilities))
      p[label] = (last.p[label] ?? value) + alpha * (value - (last.p[label] ?? value));
    this.state.set(track, { time, p });
    return { ...p };
  }
}
