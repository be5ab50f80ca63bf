// The two Kubernetes API calls the CA's TokenReview authenticator needs (docs/architecture.md "Identity"):
// POST authentication.k8s.io/v1 TokenReview for one bearer token and audience, and GET of the token's bound
// pod for its spec.nodeName. Answers are checked field by field (the API is trusted, its bytes are parsed
// defensively); any failure to get an answer rejects, and the authenticator turns that into a refusal.
import { isJson, type KubeClient } from '../kube/client.ts';
import { KubeError } from '../kube/errors.ts';

export type TokenReviewAnswer =
  | {
      readonly authenticated: true;
      /** `system:serviceaccount:<ns>:<name>` for a ServiceAccount token. */
      readonly username: string;
      /** status.user.extra (e.g. `authentication.kubernetes.io/node-name`), string lists only. */
      readonly extra: ReadonlyMap<string, readonly string[]>;
      readonly audiences: readonly string[];
    }
  | { readonly authenticated: false; readonly error: string };

export interface TokenReviewApi {
  review(token: string, audience: string, signal?: AbortSignal): Promise<TokenReviewAnswer>;
  /** The node the pod is scheduled to (and its uid), or null when the pod does not exist or is unscheduled. */
  podNode(namespace: string, name: string, signal?: AbortSignal): Promise<{ node: string; uid: string } | null>;
}

/** The real API through the controller's client (its kubeconfig or in-cluster service account). */
export function kubeTokenReviewApi(client: KubeClient): TokenReviewApi {
  return {
    async review(token, audience, signal) {
      const body = {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [audience] },
      };
      const answer = await client.request(
        'POST',
        '/apis/authentication.k8s.io/v1/tokenreviews',
        { json: body },
        signal,
      );
      return parseTokenReview(answer, audience);
    },
    async podNode(namespace, name, signal) {
      let pod: unknown;
      try {
        pod = await client.get(
          `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`,
          signal,
        );
      } catch (err) {
        if (err instanceof KubeError && err.status === 404) return null;
        throw err;
      }
      if (!isJson(pod) || !isJson(pod.spec) || !isJson(pod.metadata)) {
        throw new KubeError('FERRY_KUBE_BAD_RESPONSE', `GET pod ${namespace}/${name}: not a Pod`);
      }
      const node = pod.spec.nodeName;
      const uid = pod.metadata.uid;
      if (typeof node !== 'string' || node === '') return null;
      return { node, uid: typeof uid === 'string' ? uid : '' };
    },
  };
}

/** The status of a TokenReview answer; a review is positive only if it says so and names our audience. */
export function parseTokenReview(answer: unknown, audience: string): TokenReviewAnswer {
  if (!isJson(answer) || answer.kind !== 'TokenReview' || !isJson(answer.status)) {
    throw new KubeError('FERRY_KUBE_BAD_RESPONSE', 'the TokenReview answer has no status');
  }
  const status = answer.status;
  if (status.authenticated !== true) {
    const error = typeof status.error === 'string' && status.error !== '' ? status.error : 'not authenticated';
    return { authenticated: false, error: error.slice(0, 200) };
  }
  const user = isJson(status.user) ? status.user : {};
  if (typeof user.username !== 'string' || user.username === '') {
    throw new KubeError('FERRY_KUBE_BAD_RESPONSE', 'an authenticated TokenReview without status.user.username');
  }
  const audiences = Array.isArray(status.audiences)
    ? status.audiences.filter((a): a is string => typeof a === 'string')
    : [];
  // The API echoes the audiences it checked; an API that ignored ours (one that only knows its own) must not
  // make a token for something else good here (the token of another audience, replayed).
  if (!audiences.includes(audience)) {
    return { authenticated: false, error: `token is not for audience ${JSON.stringify(audience)}` };
  }
  const extra = new Map<string, readonly string[]>();
  if (isJson(user.extra)) {
    for (const [k, v] of Object.entries(user.extra)) {
      if (Array.isArray(v))
        extra.set(
          k,
          v.filter((x): x is string => typeof x === 'string'),
        );
    }
  }
  return { authenticated: true, username: user.username, extra, audiences };
}
