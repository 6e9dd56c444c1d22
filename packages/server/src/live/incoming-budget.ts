/**
 * The bytes of incoming WebSocket messages still arriving, across all connections. ws buffers a
 * message until its last frame is in, up to the per-connection read limit (4 MiB after
 * authentication); an attack review parked 3.75 MiB on each of 700 authenticated connections that
 * never finished their message (2.8 GB, and every other user's queries refused by the memory
 * guard). Past `max` in all, the connection holding the most is closed: one client's unfinished
 * messages cannot take the memory others need.
 */
export class IncomingBudget<K> {
  private readonly held = new Map<K, number>();
  private total = 0;

  /** `evict` closes a connection; it must call `complete` for it (its bytes are then given back). */
  constructor(private readonly max: number, private readonly evict: (holder: K) => void) {}

  /** What `holder`'s connection holds of unfinished messages now (read after its parser ran). */
  set(holder: K, bytes: number): void {
    if (bytes === 0) return this.complete(holder);
    this.total += bytes - (this.held.get(holder) ?? 0);
    this.held.set(holder, bytes);
    while (this.total > this.max && this.held.size > 0) {
      const largest = this.largest();
      this.complete(largest);
      this.evict(largest);
    }
  }

  /** Nothing of `holder`'s is pending any more (its connection closed). */
  complete(holder: K): void {
    const bytes = this.held.get(holder);
    if (bytes === undefined) return;
    this.total -= bytes;
    this.held.delete(holder);
  }

  /** Bytes held in all (the metric). */
  get bytes(): number {
    return this.total;
  }

  private largest(): K {
    let best: K | undefined;
    let most = -1;
    for (const [holder, bytes] of this.held) {
      if (bytes > most) {
        most = bytes;
        best = holder;
      }
    }
    return best!;
  }
}
