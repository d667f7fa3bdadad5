// Optional rebuild throttles (max_objects_per_second, max_bytes_per_second): a token bucket
// holding one second's worth, so a busy node can cap the I/O its rebuilds cost.
export class RateLimiter {
  private tokens: number;
  private last = Date.now();

  constructor(private readonly perSecond: number) {
    this.tokens = perSecond;
  }

  async take(n: number): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond);
      this.last = now;
      if (this.tokens >= Math.min(n, this.perSecond)) {
        this.tokens -= n;
        return;
      }
      const need = Math.min(n, this.perSecond) - this.tokens;
      await new Promise((r) => setTimeout(r, Math.ceil((need / this.perSecond) * 1000)));
    }
  }
}
