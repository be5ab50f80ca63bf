// Fuzz target `hbone-server` (network): a real HboneServer (src/hbone/server.ts) on loopback with a
// test PKI. Each input is a fresh connection: mostly a verified mTLS session carrying an HTTP/2 preface,
// SETTINGS and generated frames (a CONNECT with one header broken, CONTINUATION splits, lying lengths,
// flow-control and stream-state abuse), sometimes plain bytes where the TLS ClientHello belongs. After each
// input a legitimate CONNECT must still get 200 and echo bytes; every 100 inputs it is made on a new
// session too, and the server must not hold on to the fuzzer's sessions. onConnect must only ever see
// requests that passed validation.
import { once } from 'node:events';
import type { ClientHttp2Session } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import fc from 'fast-check';
import { parseHboneAuthority } from '../../../src/hbone/authority.ts';
import { spiffeId } from '../../../src/identity/spiffe-id.ts';
import { buildTlsContexts, hboneClientTlsOptions } from '../../../src/identity/tls-context.ts';
import { startEchoServer } from '../../../test/helpers/echo-server.ts';
import { dialAuthority, openRawHboneSession, startHboneFixture } from '../../../test/helpers/hbone-client.ts';
import { createTestPki } from '../../../test/helpers/test-pki.ts';
import { type FuzzTarget, FuzzViolation } from '../engine.ts';
import { type HeaderList, h2ClientBytes, mutatedHeaderList } from '../h2-frames.ts';
import { mutatedBytes } from '../mutate.ts';

type HboneInput =
  | { readonly kind: 'h2'; readonly parts: readonly Uint8Array[] }
  | { readonly kind: 'plain'; readonly bytes: Uint8Array };

const FRESH_SESSION_EVERY = 100;
const SETTLE_MS = 20;

export const hboneServerTarget: FuzzTarget = {
  name: 'hbone-server',
  kind: 'network',
  what: 'HBONE listener over real sockets: mTLS + HTTP/2 frames + CONNECT requests, then a legitimate CONNECT',
  hangMs: 30_000,
  async start() {
    const pki = await createTestPki('cluster.local');
    const serverId = spiffeId('cluster.local', 'default', 'server');
    const serverCert = await pki.issueFor(serverId);
    const clientCert = await pki.issue('default', 'client');
    const echo = await startEchoServer();
    const echoAuthority = `${echo.ip}:${echo.port}`;
    const invalidSeen: string[] = [];
    // Tunnels whose handler has not finished, for the report when sessions are not released.
    const pending = new Set<string>();
    let count = 0;
    const fixture = await startHboneFixture(serverCert, {
      onConnect: async (req, tunnel) => {
        if (!parseHboneAuthority(req.authority).ok) invalidSeen.push(req.authority);
        const key = `input ${count} peer port ${req.peer.port}`;
        pending.add(key);
        try {
          if (req.authority === echoAuthority) await dialAuthority(req, tunnel);
          else tunnel.reject(503);
        } finally {
          pending.delete(key);
        }
      },
    });
    const addr = fixture.server.address;
    const tlsOptions = hboneClientTlsOptions(buildTlsContexts(clientCert), [serverId]);
    let legit: ClientHttp2Session | null = null;

    const validConnect: fc.Arbitrary<HeaderList> = fc.constantFrom<HeaderList>(
      [
        [':method', 'CONNECT'],
        [':authority', echoAuthority],
      ],
      [
        [':method', 'CONNECT'],
        [':authority', echoAuthority],
        ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
        ['forwarded', 'for="10.0.0.1:4000";host=echo.default.svc.cluster.local'],
        ['baggage', 'k8s.namespace.name=default'],
      ],
      [
        [':method', 'CONNECT'],
        [':authority', '127.0.0.1:9'],
      ],
    );
    const h2Bytes = h2ClientBytes(mutatedHeaderList(validConnect));
    const arbitrary: fc.Arbitrary<HboneInput> = fc.oneof(
      {
        weight: 8,
        arbitrary: fc.tuple(h2Bytes, fc.array(fc.nat(), { maxLength: 2 })).map(([bytes, cuts]) => ({
          kind: 'h2' as const,
          parts: split(bytes, cuts),
        })),
      },
      {
        weight: 1,
        arbitrary: fc
          .oneof(
            fc.uint8Array({ maxLength: 200 }),
            mutatedBytes(
              fc.constant(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03])),
              3,
            ),
            fc.constant(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')),
          )
          .map((bytes) => ({ kind: 'plain' as const, bytes })),
      },
    );

    async function legitimateConnect(fresh: boolean): Promise<void> {
      if (fresh || legit === null || legit.destroyed || legit.closed) {
        legit?.destroy();
        legit = await openRawHboneSession(addr, clientCert, [serverId]);
      }
      const stream = legit.request({ ':method': 'CONNECT', ':authority': echoAuthority }, { endStream: false });
      stream.on('error', () => {});
      const [headers] = (await Promise.race([
        once(stream, 'response'),
        once(stream, 'close').then(() => [{ ':status': 'closed' }]),
      ])) as [Record<string, unknown>];
      if (headers[':status'] !== 200) {
        stream.destroy();
        throw new FuzzViolation(`legitimate CONNECT answered ${String(headers[':status'])} after the input`);
      }
      stream.end('ping');
      let got = '';
      for await (const chunk of stream) got += String(chunk);
      if (got !== 'ping') throw new FuzzViolation(`legitimate tunnel echoed ${JSON.stringify(got)}`);
    }

    return {
      sync: false,
      arbitrary,
      async run(input: HboneInput) {
        count++;
        const socket =
          input.kind === 'plain'
            ? netConnect({ host: addr.ip, port: addr.port })
            : tlsConnect({ host: addr.ip, port: addr.port, ...tlsOptions });
        socket.on('error', () => {});
        await Promise.race([once(socket, input.kind === 'plain' ? 'connect' : 'secureConnect'), once(socket, 'close')]);
        if (!socket.destroyed) {
          const parts = input.kind === 'plain' ? [input.bytes] : input.parts;
          for (const part of parts) socket.write(part);
          await settle(socket, SETTLE_MS);
        }
        socket.destroy();
        if (invalidSeen.length > 0) {
          throw new FuzzViolation(`onConnect saw an authority that fails validation: ${JSON.stringify(invalidSeen)}`);
        }
        await legitimateConnect(count % FRESH_SESSION_EVERY === 0);
        if (count % FRESH_SESSION_EVERY === 0) {
          await expectSessionsReleased(
            () => fixture.server.stats().sessions,
            () =>
              ` (open CONNECT streams ${fixture.server.stats().streams}; unfinished tunnels: ${[...pending].join(', ')})`,
          );
        }
      },
      async close() {
        legit?.destroy();
        await fixture[Symbol.asyncDispose]();
        await echo.close();
      },
    };
  },
};

function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    parts.push(bytes.subarray(from, p));
    from = p;
  }
  parts.push(bytes.subarray(from));
  return parts.filter((p) => p.length > 0);
}

function settle(s: Socket, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    s.resume();
    s.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Sessions of closed fuzz connections must go away: only the legitimate one may remain. */
async function expectSessionsReleased(sessions: () => number, describe: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + 3_000;
  while (sessions() > 1) {
    if (Date.now() > deadline)
      throw new FuzzViolation(`${sessions()} HTTP/2 sessions still open on the server${describe()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
