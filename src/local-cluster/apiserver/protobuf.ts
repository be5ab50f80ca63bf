// The little of Kubernetes' protobuf encoding that kubectl's imperative generators need here: `kubectl create
// namespace NAME` and `kubectl create serviceaccount NAME` send their object as
// `application/vnd.kubernetes.protobuf` (client-go's default for built-in types) and do not retry as JSON. A
// body is the magic "k8s\0" and a runtime.Unknown {typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2}; raw is
// the typed object whose field 1 is ObjectMeta {name = 1, generateName = 2, namespace = 3, labels = 11,
// annotations = 12}. Only Namespace, ServiceAccount, ConfigMap and Secret are decoded (metadata, data, type); any
// other kind is refused, so kubectl prints the reason. Pure; bounded by the body size cap.
import type { Obj } from './json.ts';
import { failure } from './status.ts';

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

interface Field {
  readonly num: number;
  readonly wire: number;
  readonly bytes: Buffer | null;
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (let n = 0; n < 10; n++) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++] as number;
      v += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return v;
      mul *= 128;
    }
    throw new Error('varint too long');
  };
  while (i < buf.length) {
    const key = varint();
    const num = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      varint();
      out.push({ num, wire, bytes: null });
    } else if (wire === 2) {
      const len = varint();
      if (i + len > buf.length) throw new Error('truncated field');
      out.push({ num, wire, bytes: buf.subarray(i, i + len) });
      i += len;
    } else if (wire === 1 || wire === 5) {
      i += wire === 1 ? 8 : 4;
      out.push({ num, wire, bytes: null });
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const text = (f: Field | undefined): string | undefined => (f?.bytes == null ? undefined : f.bytes.toString('utf8'));

function stringMap(entries: readonly Field[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    if (e.bytes === null) continue;
    const kv = fields(e.bytes);
    const k = text(kv.find((f) => f.num === 1)) ?? '';
    Object.defineProperty(out, k, {
      value: text(kv.find((f) => f.num === 2)) ?? '',
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function bytesMap(entries: readonly Field[]): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const e of entries) {
    if (e.bytes === null) continue;
    const kv = fields(e.bytes);
    const k = text(kv.find((f) => f.num === 1)) ?? '';
    Object.defineProperty(out, k, {
      value: kv.find((f) => f.num === 2)?.bytes ?? Buffer.alloc(0),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function objectMeta(buf: Buffer): Obj {
  const fs = fields(buf);
  const meta: Obj = {};
  const set = (key: string, v: string | undefined): void => {
    if (v !== undefined && v !== '') meta[key] = v; // proto2 sends unset strings as ""
  };
  set('name', text(fs.find((f) => f.num === 1)));
  set('generateName', text(fs.find((f) => f.num === 2)));
  set('namespace', text(fs.find((f) => f.num === 3)));
  const labels = fs.filter((f) => f.num === 11);
  const annotations = fs.filter((f) => f.num === 12);
  if (labels.length > 0) meta.labels = stringMap(labels);
  if (annotations.length > 0) meta.annotations = stringMap(annotations);
  return meta;
}

const DECODABLE = new Set(['v1/Namespace', 'v1/ServiceAccount', 'v1/ConfigMap', 'v1/Secret']);

/** The JSON form of a protobuf request body, or a 415 naming what cannot be decoded. */
export function decodeProtobufBody(body: Buffer): Obj {
  const refuse = (why: string) =>
    failure(
      415,
      'UnsupportedMediaType',
      `${why}; this server reads JSON and YAML: write the object to a file and use kubectl create -f / apply -f`,
    );
  if (body.length < MAGIC.length || !body.subarray(0, 4).equals(MAGIC)) throw refuse('not a Kubernetes protobuf body');
  let unknown: Field[];
  try {
    unknown = fields(body.subarray(4));
  } catch (err) {
    throw refuse(`malformed protobuf: ${(err as Error).message}`);
  }
  const typeMeta = unknown.find((f) => f.num === 1)?.bytes;
  const raw = unknown.find((f) => f.num === 2)?.bytes;
  if (typeMeta == null || raw == null) throw refuse('protobuf body without type or object');
  const tm = fields(typeMeta);
  const apiVersion = text(tm.find((f) => f.num === 1)) ?? '';
  const kind = text(tm.find((f) => f.num === 2)) ?? '';
  if (!DECODABLE.has(`${apiVersion}/${kind}`))
    throw refuse(
      `protobuf is decoded only for Namespace, ServiceAccount, ConfigMap and Secret, not ${kind || 'this object'}`,
    );
  try {
    const top = fields(raw);
    const metaBytes = top.find((f) => f.num === 1)?.bytes;
    const out: Obj = { apiVersion, kind, metadata: metaBytes == null ? {} : objectMeta(metaBytes) };
    // ConfigMap {data = 2 map<string,string>}; Secret {data = 2 map<string,bytes>, type = 3}.
    const data = top.filter((f) => f.num === 2);
    if (kind === 'ConfigMap' && data.length > 0) out.data = stringMap(data);
    if (kind === 'Secret') {
      if (data.length > 0)
        out.data = Object.fromEntries(Object.entries(bytesMap(data)).map(([k, v]) => [k, v.toString('base64')]));
      const type = text(top.find((f) => f.num === 3));
      if (type !== undefined && type !== '') out.type = type;
    }
    return out;
  } catch (err) {
    throw refuse(`malformed protobuf: ${(err as Error).message}`);
  }
}
