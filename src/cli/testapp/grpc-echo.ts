// `ferry testapp grpc-echo` / `grpc-client`: a real gRPC server and client (@grpc/grpc-js, h2c) standing in
// for gRPC images in the local cluster and used by the waypoint's gRPC tests. Service `ferry.test.Echo`
// with one method per call shape — Unary, ServerStream, ClientStream, Bidi — whose messages are JSON (no
// .proto files needed). Every reply names the pod and carries the request metadata the server saw, so a
// test sees what the waypoint's header modifiers did; a request `{status: N}` makes the server fail the
// call with gRPC status N.
import * as grpc from '@grpc/grpc-js';

export interface EchoRequest {
  readonly message?: string;
  /** Fail the call with this gRPC status (1..16). */
  readonly status?: number;
  /** ServerStream: how many replies (default 3, at most 1,000). */
  readonly count?: number;
}

export interface EchoReply {
  readonly pod: string;
  readonly method: string;
  readonly message: string;
  /** Request metadata as the server saw it (lower-case names; repeated values joined with ", "). */
  readonly metadata: Record<string, string>;
  /** ClientStream: messages received; Bidi/ServerStream: index of this reply. */
  readonly count: number;
}

const encode = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const decode = (b: Buffer): never => JSON.parse(b.toString('utf8')) as never;

const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/ferry.test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: encode,
  requestDeserialize: decode,
  responseSerialize: encode,
  responseDeserialize: decode,
  originalName: name,
});

/** The service definition both sides share. */
export const ECHO_SERVICE = {
  Unary: method('Unary', false, false),
  ServerStream: method('ServerStream', false, true),
  ClientStream: method('ClientStream', true, false),
  Bidi: method('Bidi', true, true),
} as const;

function metadataOf(md: grpc.Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.getMap())) out[k] = md.get(k).map(String).join(', ') || String(v);
  return out;
}

function failure(req: EchoRequest): Partial<grpc.StatusObject> | null {
  const s = req.status;
  if (s === undefined || !Number.isInteger(s) || s < 1 || s > 16) return null;
  return { code: s, details: `failed as asked (${s})` };
}

export interface RunningGrpcEcho extends AsyncDisposable {
  readonly port: number;
}

/** Starts the echo server on host:port (0 = any port). */
export async function startGrpcEcho(opts: {
  readonly port: number;
  readonly host?: string;
  readonly podName: string;
  readonly log?: (line: Record<string, unknown>) => void;
}): Promise<RunningGrpcEcho> {
  const pod = opts.podName;
  const server = new grpc.Server();
  const reply = (m: string, req: EchoRequest, md: grpc.Metadata, count: number): EchoReply => ({
    pod,
    method: m,
    message: req.message ?? '',
    metadata: metadataOf(md),
    count,
  });
  server.addService(ECHO_SERVICE, {
    Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, done: grpc.sendUnaryData<EchoReply>) {
      opts.log?.({ msg: 'call', method: 'Unary' });
      const fail = failure(call.request);
      if (fail !== null) done(fail, null);
      else done(null, reply('Unary', call.request, call.metadata, 1));
    },
    ServerStream(call: grpc.ServerWritableStream<EchoRequest, EchoReply>) {
      const fail = failure(call.request);
      if (fail !== null) {
        call.emit('error', fail);
        return;
      }
      const n = Math.min(Math.max(call.request.count ?? 3, 0), 1000);
      for (let i = 0; i < n; i++) call.write(reply('ServerStream', call.request, call.metadata, i));
      call.end();
    },
    ClientStream(call: grpc.ServerReadableStream<EchoRequest, EchoReply>, done: grpc.sendUnaryData<EchoReply>) {
      const seen: string[] = [];
      call.on('data', (m: EchoRequest) => seen.push(m.message ?? ''));
      call.on('end', () =>
        done(null, { ...reply('ClientStream', {}, call.metadata, seen.length), message: seen.join(',') }),
      );
    },
    Bidi(call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) {
      let i = 0;
      call.on('data', (m: EchoRequest) => {
        call.write(reply('Bidi', m, call.metadata, i));
        i += 1;
      });
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${opts.host ?? '0.0.0.0'}:${opts.port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err === null ? resolve(p) : reject(err),
    );
  });
  return {
    port,
    async [Symbol.asyncDispose]() {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      server.forceShutdown();
    },
  };
}

/** A client of the echo service on `target` (`host:port`, plaintext h2c). */
export function echoClient(
  target: string,
): grpc.Client & Record<keyof typeof ECHO_SERVICE, grpc.MethodDefinition<EchoRequest, EchoReply>> {
  const Ctor = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'ferry.test.Echo');
  return new Ctor(target, grpc.credentials.createInsecure()) as never;
}

/** One unary call: the reply, or the gRPC status it failed with. */
export function unaryCall(
  client: grpc.Client,
  req: EchoRequest,
  metadata: Record<string, string> = {},
): Promise<{ reply: EchoReply | null; code: number; details: string }> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.add(k, v);
  return new Promise((resolve) => {
    client.makeUnaryRequest<EchoRequest, EchoReply>(
      ECHO_SERVICE.Unary.path,
      encode,
      decode,
      req,
      md,
      { deadline: Date.now() + 10_000 },
      (err, reply) => {
        if (err !== null) resolve({ reply: null, code: err.code, details: err.details });
        else resolve({ reply: reply ?? null, code: 0, details: '' });
      },
    );
  });
}

export type CallShape = 'unary' | 'server' | 'client' | 'bidi';

/** One call of `shape`: the pod that answered, the replies received and the gRPC status. */
export function callOnce(
  client: grpc.Client,
  shape: CallShape,
  md: grpc.Metadata,
  index: number,
): Promise<{ pod: string | null; replies: number; code: number; metadata: Record<string, string> | null }> {
  const deadline = { deadline: Date.now() + 10_000 };
  return new Promise((resolve) => {
    let pod: string | null = null;
    let replies = 0;
    let metadata: Record<string, string> | null = null;
    const onReply = (r: EchoReply | undefined): void => {
      if (r === undefined) return;
      pod = r.pod;
      metadata = r.metadata;
      replies += 1;
    };
    const finish = (err: grpc.ServiceError | null): void =>
      resolve({ pod, replies, code: err === null ? 0 : err.code, metadata });
    const m = ECHO_SERVICE;
    switch (shape) {
      case 'unary':
        client.makeUnaryRequest(m.Unary.path, encode, decode, { message: String(index) }, md, deadline, (err, r) => {
          onReply(r as EchoReply | undefined);
          finish(err);
        });
        return;
      case 'server': {
        const call = client.makeServerStreamRequest(m.ServerStream.path, encode, decode, { count: 50 }, md, deadline);
        call.on('data', onReply);
        call.on('error', finish);
        call.on('end', () => finish(null));
        return;
      }
      case 'client': {
        const call = client.makeClientStreamRequest(m.ClientStream.path, encode, decode, md, deadline, (err, r) => {
          onReply(r as EchoReply | undefined);
          finish(err);
        });
        for (let i = 0; i < 10; i++) call.write({ message: String(i) });
        call.end();
        return;
      }
      case 'bidi': {
        // Interactive: the next message only after the previous reply (a buffering proxy would hang).
        const call = client.makeBidiStreamRequest(m.Bidi.path, encode, decode, md, deadline);
        let sent = 0;
        call.on('data', (r: EchoReply) => {
          onReply(r);
          if (sent < 10) {
            call.write({ message: String(sent) });
            sent += 1;
          } else call.end();
        });
        call.on('error', finish);
        call.on('end', () => finish(null));
        call.write({ message: 'first' });
        return;
      }
    }
  });
}

/** `ferry testapp grpc-client`: `calls` calls of `shape`; JSON summary of answering pods and statuses. */
export async function runGrpcClient(opts: {
  readonly target: string;
  readonly calls: number;
  readonly shape?: CallShape;
  readonly concurrency?: number;
  readonly metadata: Record<string, string>;
  readonly out: (text: string) => void;
}): Promise<number> {
  const client = echoClient(opts.target);
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(opts.metadata)) md.add(k, v);
  const pods: Record<string, number> = {};
  const codes: Record<string, number> = {};
  let replies = 0;
  let metadata: Record<string, string> | null = null;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < opts.calls) {
      const i = next;
      next += 1;
      const r = await callOnce(client, opts.shape ?? 'unary', md, i);
      codes[String(r.code)] = (codes[String(r.code)] ?? 0) + 1;
      replies += r.replies;
      if (r.pod !== null) pods[r.pod] = (pods[r.pod] ?? 0) + 1;
      metadata ??= r.metadata;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 1) }, worker));
  client.close();
  opts.out(`${JSON.stringify({ calls: opts.calls, shape: opts.shape ?? 'unary', pods, codes, replies, metadata })}\n`);
  return codes['0'] === opts.calls ? 0 : 1;
}
