// Things to undo when a page goes away: listeners, timers, objects with dispose().

/** A registry of things to undo; dispose() undoes them all, newest first, once. */
export class DisposableStore {
  constructor() {
    this._items = [];
    this.disposed = false;
  }

  /** Keeps `item` (a function, or an object with dispose()) to undo later; undone at once when already disposed. */
  add(item) {
    if (this.disposed) {
      (typeof item === 'function' ? item : () => item.dispose())();
      return item;
    }
    this._items.push(item);
    return item;
  }

  /** Listens to `type` on `target` until disposed. */
  listen(target, type, handler, options = {}) {
    target.addEventListener(type, handler, options);
    this.add(() => target.removeEventListener(type, handler, options));
  }

  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    while (this._items.length) {
      const item = this._items.pop();
      try {
        if (typeof item === 'function') item();
        else item.dispose();
      } catch {
        /* keep disposing the rest */
      }
    }
  }
}
