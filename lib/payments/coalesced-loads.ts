/**
 * Loads of one key that arrive together share database reads: at most one load of a key runs, and every caller
 * that arrives while it runs shares the one load that starts when it ends. A joiner never takes the running load's
 * answer: that read may have started before a change the joiner already saw committed (the status cache promises
 * that a read started after a commit sees it), while the next load starts after every one of its callers arrived.
 * A burst of N misses of one key (a cold instance's first second) costs two reads instead of N.
 */
export class CoalescedLoads {
  private readonly running = new Map<string, Promise<unknown>>();
  private readonly waiting = new Map<string, Promise<unknown>>();

  load<T>(key: string, read: () => Promise<T>): Promise<T> {
    const running = this.running.get(key);
    if (!running) return this.start(key, read);
    let next = this.waiting.get(key) as Promise<T> | undefined;
    if (!next) {
      next = running
        .catch(() => undefined)
        .then(() => {
          this.waiting.delete(key);
          return this.start(key, read);
        });
      this.waiting.set(key, next);
    }
    return next;
  }

  private start<T>(key: string, read: () => Promise<T>): Promise<T> {
    const loading = read().finally(() => {
      if (this.running.get(key) === loading) this.running.delete(key);
    });
    this.running.set(key, loading);
    return loading;
  }
}
