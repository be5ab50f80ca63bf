// Fuzz target `hbone-connect` (pure): the HBONE server's CONNECT validation (validateConnect,
// parseHboneAuthority, readConnectHeaders; docs/architecture.md, HBONE) on header sets that are a valid
// authority-form CONNECT with one field broken, and on arbitrary authorities. Contract: never throws;
// refusals are ProxyErrors with FERRY_HBONE_BAD_REQUEST or FERRY_HBONE_BAD_AUTHORITY; an accepted authority
// is a canonical IP and a port in 1..65535 that formats and re-parses to itself.
import type { IncomingHttpHeaders } from 'node:http2';
import fc from 'fast-check';
import { ProxyError } from '../../../src/errors.ts';
import { formatAuthority, parseHboneAuthority } from '../../../src/hbone/authority.ts';
import { readConnectHeaders } from '../../../src/hbone/headers.ts';
import { validateConnect } from '../../../src/hbone/server.ts';
import { expectCode, type FuzzTarget, FuzzViolation, mustNotThrow } from '../engine.ts';
import { mutatedText, nastyString } from '../mutate.ts';

const CONNECT_CODES = ['FERRY_HBONE_BAD_REQUEST', 'FERRY_HBONE_BAD_AUTHORITY'];

const ipv4 = fc.ipV4();
const ipv6 = fc.ipV6();
const port = fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constantFrom(0, 65536, -1, 99999));

/** Authorities as clients write them, valid and nearly valid. */
export const authorityArbitrary: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(ipv4, port).map(([ip, p]) => `${ip}:${p}`) },
  { weight: 2, arbitrary: fc.tuple(ipv6, port).map(([ip, p]) => `[${ip}]:${p}`) },
  { weight: 1, arbitrary: fc.tuple(ipv6, port).map(([ip, p]) => `${ip}:${p}`) },
  { weight: 1, arbitrary: fc.tuple(fc.domain(), port).map(([h, p]) => `${h}:${p}`) },
  {
    weight: 3,
    arbitrary: mutatedText(
      fc.oneof(
        fc.tuple(ipv4, port).map(([ip, p]) => `${ip}:${p}`),
        fc.tuple(ipv6, port).map(([ip, p]) => `[${ip}]:${p}`),
      ),
      3,
    ),
  },
  { weight: 1, arbitrary: nastyString },
);

const headerValue: fc.Arbitrary<string | string[] | undefined> = fc.oneof(
  { weight: 4, arbitrary: nastyString },
  { weight: 1, arbitrary: fc.array(nastyString, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

/** A valid CONNECT's headers with 0..3 fields replaced, removed or added. */
const connectHeaders: fc.Arbitrary<IncomingHttpHeaders> = fc
  .tuple(
    authorityArbitrary,
    fc.array(
      fc.tuple(
        fc.constantFrom(
          ':method',
          ':authority',
          ':path',
          ':scheme',
          ':protocol',
          'baggage',
          'forwarded',
          'traceparent',
        ),
        headerValue,
      ),
      { maxLength: 3 },
    ),
  )
  .map(([authority, edits]) => {
    const h: Record<string, string | string[] | undefined> = { ':method': 'CONNECT', ':authority': authority };
    for (const [name, value] of edits) {
      if (value === undefined) delete h[name];
      else h[name] = value;
    }
    return h as IncomingHttpHeaders;
  });

function check(headers: IncomingHttpHeaders): void {
  const refusal = mustNotThrow('validateConnect', () => validateConnect(headers));
  mustNotThrow('readConnectHeaders', () => readConnectHeaders(headers));
  if (refusal !== null) {
    if (!(refusal instanceof ProxyError)) throw new FuzzViolation('validateConnect returned a non-ProxyError');
    expectCode(refusal.code, CONNECT_CODES, 'validateConnect');
    return;
  }
  const authority = headers[':authority'];
  if (headers[':method'] !== 'CONNECT' || typeof authority !== 'string') {
    throw new FuzzViolation(`validateConnect accepted ${JSON.stringify(headers)}`);
  }
  checkAuthority(authority);
}

function checkAuthority(text: string): void {
  const parsed = mustNotThrow('parseHboneAuthority', () => parseHboneAuthority(text));
  if (!parsed.ok) {
    expectCode(parsed.error.code, ['FERRY_HBONE_BAD_AUTHORITY'], 'parseHboneAuthority');
    return;
  }
  const { ip, port: p } = parsed.value;
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new FuzzViolation(`port ${p} accepted from ${text}`);
  const again = parseHboneAuthority(formatAuthority(ip, p));
  if (!again.ok || again.value.ip !== ip || again.value.port !== p) {
    throw new FuzzViolation(`${JSON.stringify(text)} → ${ip}:${p} does not round-trip`);
  }
}

export const hboneConnectTarget: FuzzTarget = {
  name: 'hbone-connect',
  kind: 'pure',
  what: 'HBONE CONNECT validation: validateConnect, parseHboneAuthority, readConnectHeaders',
  hangMs: 5_000,
  async start() {
    return {
      sync: true,
      arbitrary: fc.oneof(
        { weight: 3, arbitrary: connectHeaders.map((h) => ({ headers: h, authority: null })) },
        { weight: 1, arbitrary: authorityArbitrary.map((a) => ({ headers: null, authority: a })) },
      ),
      run(input: { headers: IncomingHttpHeaders | null; authority: string | null }) {
        if (input.headers !== null) check(input.headers);
        if (input.authority !== null) checkAuthority(input.authority);
      },
      async close() {},
    };
  },
};
