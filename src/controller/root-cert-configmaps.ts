// `--root-cert-configmap`: the leader publishes the CA's trust bundle as ConfigMap `<name>` (key
// `root-cert.pem`) in the controller's namespace and in each namespace with a ferry-waypoint Gateway,
// where the waypoint pods mount it to verify xDS and the CA. Istio writes its `istio-ca-root-cert` into
// every namespace; Ferry writes only where a Ferry process runs, so it needs no namespace list and no
// ConfigMap list/watch (chart RBAC: create, and get/update of this one name). A ConfigMap already holding
// the bundle is never written; one without Ferry's managed-by label is left alone.
import type { Json, KubeClient } from '../kube/client.ts';
import { isJson } from '../kube/client.ts';
import { KubeError } from '../kube/errors.ts';
import type { Logger } from '../runtime/logger.ts';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './waypoint-template.ts';

export const ROOT_CERT_KEY = 'root-cert.pem';

export interface RootCertPublisherOptions {
  readonly client: KubeClient;
  readonly name: string;
  /** The trust bundle, concatenated PEM. */
  readonly rootCertPem: string;
  readonly log: Logger;
}

export class RootCertPublisher {
  readonly #opts: RootCertPublisherOptions;
  /** Namespaces whose ConfigMap is known to hold the bundle (or to be someone else's). */
  readonly #done = new Set<string>();

  constructor(opts: RootCertPublisherOptions) {
    this.#opts = opts;
  }

  /** Forgets what is known: the next sync reads every ConfigMap again. */
  reset(): void {
    this.#done.clear();
  }

  /** Writes the ConfigMap where it is missing or stale; a failure is logged and retried next time. */
  async sync(namespaces: Iterable<string>): Promise<void> {
    const wanted = new Set(namespaces);
    for (const ns of wanted) {
      if (this.#done.has(ns)) continue;
      try {
        if (await this.#publish(ns)) this.#done.add(ns);
      } catch (err) {
        this.#opts.log.warn({ namespace: ns, configMap: this.#opts.name, err }, 'root certificate not published');
      }
    }
    // A namespace may be deleted and made again: read it afresh when it reappears.
    for (const ns of this.#done) if (!wanted.has(ns)) this.#done.delete(ns);
  }

  /** True when the ConfigMap now holds the bundle (or is not Ferry's); false after a lost race. */
  async #publish(ns: string): Promise<boolean> {
    const { client, name, rootCertPem, log } = this.#opts;
    const collection = `/api/v1/namespaces/${encodeURIComponent(ns)}/configmaps`;
    const stored = await client.get(`${collection}/${encodeURIComponent(name)}`).catch((err: unknown) => {
      if (err instanceof KubeError && err.status === 404) return null;
      throw err;
    });
    if (stored === null) {
      const created = await client.request('POST', collection, { json: configMap(ns, name, rootCertPem) }).then(
        () => true,
        (err: unknown) => raced(err),
      );
      if (created) log.info({ namespace: ns, configMap: name }, 'root certificate published');
      return created;
    }
    const meta = isJson(stored.metadata) ? stored.metadata : {};
    const labels = isJson(meta.labels) ? meta.labels : {};
    if (labels[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) {
      log.warn(
        { code: 'FERRY_CONTROLLER_NOT_MANAGED', namespace: ns, configMap: name },
        `exists without the label ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}: left alone`,
      );
      return true;
    }
    const data = isJson(stored.data) ? stored.data : {};
    if (data[ROOT_CERT_KEY] === rootCertPem) return true;
    const next: Json = { ...stored, data: { ...data, [ROOT_CERT_KEY]: rootCertPem } };
    const replaced = await client.request('PUT', `${collection}/${encodeURIComponent(name)}`, { json: next }).then(
      () => true,
      (err: unknown) => raced(err),
    );
    if (replaced) log.info({ namespace: ns, configMap: name }, 'root certificate updated');
    return replaced;
  }
}

function configMap(namespace: string, name: string, rootCertPem: string): Json {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } },
    data: { [ROOT_CERT_KEY]: rootCertPem },
  };
}

/** 409: created or changed by another writer meanwhile; the next sync reads it again. */
function raced(err: unknown): false {
  if (err instanceof KubeError && err.status === 409) return false;
  throw err;
}
