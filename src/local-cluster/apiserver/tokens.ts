// ServiceAccount tokens: TokenRequest (POST serviceaccounts/NAME/token) issues an ES256 JWT bound to the
// service account (and optionally a pod), an audience list and an expiry; TokenReview checks one: signature,
// expiry, audience, and that the bound service account and pod still exist with the same uid, as the real
// server does. The CA will authenticate node agents with these (docs/architecture.md).
import { createPrivateKey, createPublicKey, type KeyObject, randomUUID, sign, verify } from 'node:crypto';
import { isObj, metaOf, type Obj, own } from './json.ts';
import { k8sTime } from './objects.ts';
import type { ResourceType } from './resources.ts';
import { badRequest, invalid, notFound } from './status.ts';
import type { ObjectStore } from './store.ts';

export const DEFAULT_AUDIENCE = 'https://kubernetes.default.svc.cluster.local';
const ISSUER = DEFAULT_AUDIENCE;
const MIN_EXPIRATION_S = 600;
const MAX_EXPIRATION_S = 48 * 3600;
const DEFAULT_EXPIRATION_S = 3600;

interface Claims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: readonly string[];
  readonly exp: number;
  readonly iat: number;
  readonly nbf: number;
  readonly jti: string;
  readonly 'kubernetes.io': {
    readonly namespace: string;
    readonly serviceaccount: { readonly name: string; readonly uid: string };
    readonly pod?: { readonly name: string; readonly uid: string };
    readonly node?: { readonly name: string };
  };
}

const b64 = (v: string | Buffer): string => Buffer.from(v).toString('base64url');

export class TokenIssuer {
  readonly #key: KeyObject;
  readonly #public: KeyObject;
  readonly #store: ObjectStore;
  readonly #now: () => number;

  constructor(keyPem: string, store: ObjectStore, now: () => number = Date.now) {
    this.#key = createPrivateKey(keyPem);
    this.#public = createPublicKey(this.#key);
    this.#store = store;
    this.#now = now;
  }

  /** POST …/serviceaccounts/NAME/token → 201 TokenRequest with status.token. */
  tokenRequest(_t: ResourceType, ns: string, saName: string, body: unknown): { code: number; body: unknown } {
    const sa = this.#store.get('/serviceaccounts', ns, saName);
    if (sa === undefined) throw notFound('serviceaccounts', saName, '', 'serviceaccounts');
    const spec = isObj(body) && isObj(body.spec) ? body.spec : {};
    const audiences = Array.isArray(spec.audiences) && spec.audiences.length > 0 ? spec.audiences : [DEFAULT_AUDIENCE];
    if (!audiences.every((a) => typeof a === 'string' && a !== ''))
      throw badRequest('spec.audiences must be non-empty strings');
    const exp = spec.expirationSeconds ?? DEFAULT_EXPIRATION_S;
    if (typeof exp !== 'number' || !Number.isInteger(exp) || exp < MIN_EXPIRATION_S || exp > MAX_EXPIRATION_S) {
      throw invalid('TokenRequest', 'authentication.k8s.io', saName, [
        {
          reason: 'FieldValueInvalid',
          field: 'spec.expirationSeconds',
          message: `Invalid value: ${String(exp)}: must be ${MIN_EXPIRATION_S}..${MAX_EXPIRATION_S}`,
        },
      ]);
    }
    let pod: { name: string; uid: string; node?: string } | undefined;
    const ref = isObj(spec.boundObjectRef) ? spec.boundObjectRef : null;
    if (ref !== null) {
      if (ref.kind !== 'Pod' || typeof ref.name !== 'string')
        throw badRequest('spec.boundObjectRef: only kind Pod with a name is supported');
      const p = this.#store.get('/pods', ns, ref.name);
      if (p === undefined) throw notFound('pods', ref.name, '', 'pods');
      const uid = String(own(metaOf(p), 'uid'));
      if (typeof ref.uid === 'string' && ref.uid !== '' && ref.uid !== uid) {
        throw invalid('TokenRequest', 'authentication.k8s.io', saName, [
          {
            reason: 'FieldValueInvalid',
            field: 'spec.boundObjectRef.uid',
            message: `Invalid value: the pod's uid is ${uid}`,
          },
        ]);
      }
      const podSpec = isObj(p.spec) ? p.spec : {};
      if (
        podSpec.serviceAccountName !== undefined &&
        podSpec.serviceAccountName !== saName &&
        !(podSpec.serviceAccountName === '' && saName === 'default')
      ) {
        throw badRequest(`pod ${ref.name} does not run as service account ${saName}`);
      }
      pod = { name: ref.name, uid, ...(typeof podSpec.nodeName === 'string' ? { node: podSpec.nodeName } : {}) };
    }
    const iat = Math.floor(this.#now() / 1000);
    const claims: Claims = {
      iss: ISSUER,
      sub: `system:serviceaccount:${ns}:${saName}`,
      aud: audiences as string[],
      exp: iat + exp,
      iat,
      nbf: iat,
      jti: randomUUID(),
      'kubernetes.io': {
        namespace: ns,
        serviceaccount: { name: saName, uid: String(own(metaOf(sa), 'uid')) },
        ...(pod === undefined ? {} : { pod: { name: pod.name, uid: pod.uid } }),
        ...(pod?.node === undefined ? {} : { node: { name: pod.node } }),
      },
    };
    const signingInput = `${b64(JSON.stringify({ alg: 'ES256', typ: 'JWT' }))}.${b64(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key: this.#key, dsaEncoding: 'ieee-p1363' });
    return {
      code: 201,
      body: {
        kind: 'TokenRequest',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { name: saName, namespace: ns, creationTimestamp: null },
        spec: { audiences, expirationSeconds: exp, boundObjectRef: ref },
        status: {
          token: `${signingInput}.${b64(signature)}`,
          expirationTimestamp: k8sTime(new Date((iat + exp) * 1000)),
        },
      },
    };
  }

  /** The claims of a valid token for one of `audiences`, or the reason it is not valid. */
  verify(token: string, audiences: readonly string[]): { ok: true; claims: Claims } | { ok: false; error: string } {
    const parts = token.split('.');
    if (parts.length !== 3 || token.length > 16_384) return { ok: false, error: 'not a JWT' };
    const [h = '', p = '', s = ''] = parts;
    const valid = verify(
      'sha256',
      Buffer.from(`${h}.${p}`),
      { key: this.#public, dsaEncoding: 'ieee-p1363' },
      Buffer.from(s, 'base64url'),
    );
    if (!valid) return { ok: false, error: 'invalid signature' };
    let claims: Claims;
    try {
      claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Claims;
    } catch {
      return { ok: false, error: 'malformed claims' };
    }
    const now = Math.floor(this.#now() / 1000);
    if (typeof claims.exp !== 'number' || claims.exp <= now) return { ok: false, error: 'token has expired' };
    if (!Array.isArray(claims.aud) || !claims.aud.some((a) => audiences.includes(a)))
      return { ok: false, error: 'token audiences do not match' };
    const k = claims['kubernetes.io'];
    const sa = this.#store.get('/serviceaccounts', k.namespace, k.serviceaccount.name);
    if (sa === undefined || own(metaOf(sa), 'uid') !== k.serviceaccount.uid)
      return { ok: false, error: 'service account no longer exists' };
    if (k.pod !== undefined) {
      const pod = this.#store.get('/pods', k.namespace, k.pod.name);
      if (pod === undefined || own(metaOf(pod), 'uid') !== k.pod.uid)
        return { ok: false, error: 'bound pod no longer exists' };
    }
    return { ok: true, claims };
  }
}

/** POST /apis/authentication.k8s.io/v1/tokenreviews. The admin bearer token reviews as system:masters. */
export function reviewToken(issuer: TokenIssuer, body: unknown, adminToken: string): { code: number; body: unknown } {
  const spec = isObj(body) && isObj(body.spec) ? body.spec : null;
  if (spec === null || typeof spec.token !== 'string') throw badRequest('TokenReview needs spec.token');
  const audiences =
    Array.isArray(spec.audiences) && spec.audiences.length > 0
      ? (spec.audiences.filter((a) => typeof a === 'string') as string[])
      : [DEFAULT_AUDIENCE];
  const reply = (status: Obj): { code: number; body: unknown } => ({
    code: 201,
    body: {
      kind: 'TokenReview',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { creationTimestamp: null },
      spec: { token: '', audiences: spec.audiences ?? [] },
      status,
    },
  });
  if (spec.token === adminToken) {
    return reply({
      authenticated: true,
      user: { username: 'ferry-admin', groups: ['system:masters', 'system:authenticated'] },
      audiences,
    });
  }
  const r = issuer.verify(spec.token, audiences);
  if (!r.ok) return reply({ authenticated: false, error: r.error, user: {} });
  const k = r.claims['kubernetes.io'];
  const extra: Record<string, string[]> = { 'authentication.kubernetes.io/credential-id': [`JTI=${r.claims.jti}`] };
  if (k.pod !== undefined) {
    extra['authentication.kubernetes.io/pod-name'] = [k.pod.name];
    extra['authentication.kubernetes.io/pod-uid'] = [k.pod.uid];
  }
  if (k.node !== undefined) extra['authentication.kubernetes.io/node-name'] = [k.node.name];
  return reply({
    authenticated: true,
    user: {
      username: r.claims.sub,
      uid: k.serviceaccount.uid,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${k.namespace}`, 'system:authenticated'],
      extra,
    },
    audiences: r.claims.aud.filter((a) => audiences.includes(a)),
  });
}
