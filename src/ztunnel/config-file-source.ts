// Feeds the MeshStore from a static file in the shape of Istio ztunnel's LOCAL_XDS_PATH YAML (the xDS
// client feeds the same store later). A load either replaces the whole config or changes nothing: a bad
// file is rejected with messages naming file, path and value, and the running config stays.
import { readFile } from 'node:fs/promises';
import { parseLocalConfig } from '../mesh/local-config/config.ts';
import type { MeshStore } from '../mesh/mesh-store.ts';
import type { Logger } from '../runtime/logger.ts';

export type LoadOutcome =
  | { readonly ok: true; readonly version: number }
  | { readonly ok: false; readonly errors: readonly string[] };

export class ConfigFileSource {
  readonly #path: string;
  readonly #store: MeshStore;
  readonly #logger: Logger;
  #loads = 0;

  constructor(path: string, store: MeshStore, logger: Logger) {
    this.#path = path;
    this.#store = store;
    this.#logger = logger.child({ scope: 'config' });
  }

  get path(): string {
    return this.#path;
  }

  /** Successful loads so far. */
  get loads(): number {
    return this.#loads;
  }

  async load(): Promise<LoadOutcome> {
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      const message = `${this.#path}: cannot read: ${(err as Error).message}`;
      this.#logger.error({ code: 'FERRY_CONFIG_UNREADABLE', file: this.#path }, message);
      return { ok: false, errors: [message] };
    }
    const parsed = parseLocalConfig(text, this.#path);
    if (!parsed.ok) {
      const errors = parsed.errors.map((e) => e.message);
      for (const e of parsed.errors) this.#logger.error({ code: e.code, file: e.file, path: e.path }, e.message);
      this.#logger.warn({ file: this.#path, errors: errors.length }, 'config rejected; keeping the running config');
      return { ok: false, errors };
    }
    const view = this.#store.replace(parsed.config);
    this.#loads++;
    for (const warning of view.warnings) this.#logger.warn({ file: this.#path }, warning);
    this.#logger.info(
      {
        file: this.#path,
        version: view.version,
        workloads: parsed.config.workloads.length,
        services: parsed.config.services.length,
        policies: parsed.config.policies.length,
      },
      'config applied',
    );
    return { ok: true, version: view.version };
  }
}
