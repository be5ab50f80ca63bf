// Test helpers for delta xDS: an event log to wait on (ACKs, pushes, responses), a Logger that captures
// lines, and the resource-name order the xDS client builds a MeshConfig in.

import type { MeshConfig } from '../../src/mesh/types.ts';
import type { LogFields, Logger } from '../../src/runtime/logger.ts';

/** An append-only event log with "wait for the first matching event after mark". */
export class Events<T> {
  readonly items: T[] = [];
  #waiters: { from: number; pred: (e: T) => boolean; resolve: (e: T) => void }[] = [];
  push = (e: T): void => {
    this.items.push(e);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.pred(e)) return true;
      w.resolve(e);
      return false;
    });
  };
  mark(): number {
    return this.items.length;
  }
  waitFor(pred: (e: T) => boolean, from = 0): Promise<T> {
    const hit = this.items.slice(from).find(pred);
    if (hit !== undefined) return Promise.resolve(hit);
    return new Promise((resolve) => this.#waiters.push({ from, pred, resolve }));
  }
  since(from: number): T[] {
    return this.items.slice(from);
  }
}

export interface LogLine {
  readonly level: 'error' | 'warn' | 'info';
  readonly fields: LogFields;
  readonly msg: string;
}

/** A Logger that records error/warn/info lines (debug dropped) as events to wait on. */
export class CapturingLogger implements Logger {
  readonly events = new Events<LogLine>();
  get lines(): readonly LogLine[] {
    return this.events.items;
  }
  error(fields: LogFields, msg: string): void {
    this.events.push({ level: 'error', fields, msg });
  }
  warn(fields: LogFields, msg: string): void {
    this.events.push({ level: 'warn', fields, msg });
  }
  info(fields: LogFields, msg: string): void {
    this.events.push({ level: 'info', fields, msg });
  }
  debug(): void {}
  isLevelEnabled(): boolean {
    return true;
  }
  child(): Logger {
    return this;
  }
}

/** The same config in resource-name order, as the xDS client builds it. */
export function sortedConfig(c: MeshConfig): MeshConfig {
  const by =
    <T>(key: (t: T) => string) =>
    (a: T, b: T) =>
      key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
  return {
    workloads: [...c.workloads].sort(by((w) => w.uid)),
    services: [...c.services].sort(by((s) => `${s.namespace}/${s.hostname}`)),
    policies: [...c.policies].sort(by((p) => `${p.namespace}/${p.name}`)),
  };
}
