// Stand-ins for namespaced tests: a tiny "ztunnel" serving an enrolled pod's listener fds, which answers
// each connection with one JSON line saying which listener took it and what the redirector told it, and a
// plain "app" server inside a pod. Both run in the test process; their sockets live in the pod netns.
import { once } from 'node:events';
import { createServer, type Server, Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { PodEnrollment } from '../../src/redirect-bpf/enroll.ts';
import type { BpfRedirector } from '../../src/redirect-bpf/loader.ts';
import { closeFd, createBoundSocketFd, createListenerFd, inNetns, openNetns } from '../../src/redirect-bpf/netns.ts';
import type { Pod } from '../../testkit/topology.ts';

export type Reply =
  | { via: 'ztunnel-outbound'; pod: string; orig: string | null }
  | { via: 'ztunnel-inbound'; pod: string; local: string; remote: string }
  | { via: 'ztunnel-hbone'; pod: string }
  | { via: 'app'; pod: string; local: string; remote: string };

/** Serves a listening fd; every connection gets `answer(socket)` as one JSON line, then EOF. */
export async function serveFd(fd: number, answer: (socket: Socket) => Reply): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined); // a client that resets is not a test failure here
    socket.resume(); // discard the request: reading is what lets us see the client's FIN and close
    socket.end(`${JSON.stringify(answer(socket))}\n`);
  });
  server.listen({ fd });
  await once(server, 'listening');
  return server;
}

export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** The stand-in ztunnel for one enrolled pod; its three servers are deferred onto `stack`. */
export async function serveEnrollment(
  redirector: BpfRedirector,
  pod: Pod,
  enrollment: PodEnrollment,
  stack: AsyncDisposableStack,
): Promise<{ outbound: Server; inbound: Server; hbone: Server }> {
  const fds = enrollment.listeners;
  const outbound = await serveFd(fds.outbound, (socket) => {
    const orig = redirector.lookupOriginalDestination(socket, { netnsCookie: enrollment.netnsCookie });
    // The same lookup with the cookie read from the accepted socket's own fd must agree.
    const viaFd = redirector.lookupOriginalDestination(socket);
    if (viaFd?.address !== orig?.address || viaFd?.port !== orig?.port) {
      return { via: 'ztunnel-outbound', pod: pod.name, orig: 'MISMATCH between netns cookie sources' };
    }
    return { via: 'ztunnel-outbound', pod: pod.name, orig: orig ? `${orig.address}:${orig.port}` : null };
  });
  stack.defer(() => closeServer(outbound));
  const inbound = await serveFd(fds.inboundPlaintext, (socket) => ({
    via: 'ztunnel-inbound',
    pod: pod.name,
    local: `${socket.localAddress}:${socket.localPort}`,
    remote: `${socket.remoteAddress}`,
  }));
  stack.defer(() => closeServer(inbound));
  const hbone = await serveFd(fds.hbone, () => ({ via: 'ztunnel-hbone', pod: pod.name }));
  stack.defer(() => closeServer(hbone));
  return { outbound, inbound, hbone };
}

/** A plain app listener inside the pod (created there with the setns sandwich). */
export async function serveApp(pod: Pod, address: string, port: number, stack: AsyncDisposableStack): Promise<Server> {
  const netnsFd = openNetns(pod.netnsPath);
  let fd: number;
  try {
    fd = inNetns(netnsFd, () => createListenerFd({ address, port }));
  } finally {
    closeFd(netnsFd);
  }
  const server = await serveFd(fd, (socket) => ({
    via: 'app',
    pod: pod.name,
    local: `${socket.localAddress}:${socket.localPort}`,
    remote: `${socket.remoteAddress}`,
  }));
  stack.defer(() => closeServer(server));
  return server;
}

const CLIENT = new URL('../namespaced/fixtures/tcp-client.ts', import.meta.url).pathname;

export type ClientResult = { ok: true; reply: Reply } | { ok: false; code: string };

/** Runs the fixture client inside `pod` (its cgroup + netns) against host:port. */
export async function connectFromPod(
  pod: Pod,
  host: string,
  port: number,
  opts: { container?: string } = {},
): Promise<ClientResult> {
  const res = await pod.run(process.execPath, [CLIENT, host, String(port)], opts);
  const line = res.stdout.trim().split('\n').pop() ?? '';
  if (line === '') throw new Error(`client in ${pod.name} printed nothing (exit ${res.code}): ${res.stderr}`);
  const parsed: unknown = JSON.parse(line);
  if (typeof parsed !== 'object' || parsed === null || !('ok' in parsed)) throw new Error(`bad client output ${line}`);
  if (parsed.ok === true && 'reply' in parsed && typeof parsed.reply === 'string') {
    return { ok: true, reply: JSON.parse(parsed.reply) as Reply };
  }
  return { ok: false, code: 'code' in parsed ? String(parsed.code) : 'unknown' };
}

/**
 * Connects from inside a pod netns, bound to `source` (e.g. 127.0.0.6, the ztunnel's inbound source), as
 * the ztunnel does: socket made with the setns sandwich, then connected by Node. Resolves the reply.
 */
export async function connectInNetns(pod: Pod, source: string, host: string, port: number): Promise<ClientResult> {
  const netnsFd = openNetns(pod.netnsPath);
  let fd: number;
  try {
    fd = inNetns(netnsFd, () => createBoundSocketFd({ address: source, port: 0 }));
  } finally {
    closeFd(netnsFd);
  }
  const socket = new Socket({ fd, readable: true, writable: true });
  socket.setEncoding('utf8');
  let reply = '';
  socket.on('data', (chunk: string) => {
    reply += chunk;
  });
  socket.connect(port, host, () => socket.write('hello\n'));
  try {
    await once(socket, 'end');
    return { ok: true, reply: JSON.parse(reply) as Reply };
  } catch (err) {
    const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : String(err);
    return { ok: false, code };
  } finally {
    socket.destroy();
  }
}

const SESSION = new URL('../namespaced/fixtures/tcp-session.ts', import.meta.url).pathname;

export interface Session {
  /** Next line the peer sent (resolves in order). */
  nextLine(): Promise<string>;
  send(line: string): void;
  close(): Promise<void>;
}

/** Starts the session fixture in `pod` and waits until it is connected. */
export async function openSession(pod: Pod, host: string, port: number): Promise<Session> {
  const child = pod.spawn(process.execPath, [SESSION, host, String(port)]);
  const events = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = once(child, 'close');
  const next = async (): Promise<{ event: string; line?: string; code?: string }> => {
    const { value, done } = await events.next();
    if (done === true) throw new Error('session fixture exited');
    return JSON.parse(String(value)) as { event: string; line?: string; code?: string };
  };
  const first = await next();
  if (first.event !== 'connected') throw new Error(`session did not connect: ${JSON.stringify(first)}`);
  return {
    async nextLine() {
      const ev = await next();
      if (ev.event !== 'line' || ev.line === undefined) throw new Error(`expected a line, got ${JSON.stringify(ev)}`);
      return ev.line;
    },
    send(line) {
      child.stdin.write(`${line}\n`);
    },
    async close() {
      child.stdin.end();
      await exited;
    },
  };
}

/** The lifecycle stand-in for 15001: first line = the original destination as JSON, then echo. */
export async function serveOutboundEcho(
  redirector: BpfRedirector,
  pod: Pod,
  enrollment: PodEnrollment,
  stack: AsyncDisposableStack,
): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    const orig = redirector.lookupOriginalDestination(socket, { netnsCookie: enrollment.netnsCookie });
    const reply: Reply = { via: 'ztunnel-outbound', pod: pod.name, orig: orig ? `${orig.address}:${orig.port}` : null };
    socket.write(`${JSON.stringify(reply)}\n`);
    socket.pipe(socket);
  });
  server.listen({ fd: enrollment.listeners.outbound });
  await once(server, 'listening');
  stack.defer(async () => {
    if (server.listening) server.close();
    // connections left open by a failed test are dropped, not awaited
  });
  return server;
}
