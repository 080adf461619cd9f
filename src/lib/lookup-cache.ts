// Answers of a slow lookup (Slack's usergroups.users.list, users.info), kept per isolate for a while, with a
// lookup already under way shared: a burst of clicks on a cold cache costs one call per key. A failed lookup
// (null) is not kept, so the next caller asks again.
export class LookupCache<T> {
  readonly #kept = new Map<string, { value: T; until: number }>();
  readonly #pending = new Map<string, Promise<T | null>>();

  constructor(readonly ttlMs: number) {}

  get(key: string, now: number, load: () => Promise<T | null>): Promise<T | null> {
    const hit = this.#kept.get(key);
    if (hit && hit.until > now) return Promise.resolve(hit.value);
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = load()
        .then((value) => {
          if (value !== null) this.#kept.set(key, { value, until: now + this.ttlMs });
          return value;
        })
        .finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    return pending;
  }
}
