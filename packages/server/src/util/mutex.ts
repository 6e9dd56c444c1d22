/** A FIFO async mutex: DDL and catalog changes run one at a time; mirrors sync one at a time. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  /** Waits for the lock and returns the function that releases it. */
  async lock(): Promise<() => void> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    return release;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.lock();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** One lock per key, made when first used and dropped when nobody holds or waits for it. */
export class KeyedMutex {
  private readonly slots = new KeyedSemaphore(1);

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.slots.run(key, fn);
  }
}

/** At most `slotsPerKey` runs at once per key; an entry lives only while a run of its key is under way or waiting. */
export class KeyedSemaphore {
  private readonly entries = new Map<string, { semaphore: Semaphore; users: number }>();

  constructor(private readonly slotsPerKey: number) {}

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { semaphore: new Semaphore(this.slotsPerKey), users: 0 };
      this.entries.set(key, entry);
    }
    entry.users++;
    try {
      return await entry.semaphore.run(fn);
    } finally {
      if (--entry.users === 0) this.entries.delete(key);
    }
  }
}

/** At most `slots` runs at once; the rest wait their turn in order. */
export class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(slots: number) {
    this.free = slots;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.free++;
    }
  }
}
