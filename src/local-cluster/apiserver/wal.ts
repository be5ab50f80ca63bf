// The API server's write-ahead log (docs/architecture.md, "Local Kubernetes API server"): every acknowledged
// write is a record appended to `wal.log` and fsynced before the answer is sent; writes that arrive while an
// fsync is running share the next one (group commit). A record is [u32 length][u32 crc32][payload], big
// endian. On open, `snapshot.json` (written atomically by compaction) is read, then the log is replayed: a
// torn last record (a crash in the middle of an append) is cut off with a warning; any other damage stops
// the start with an error naming the file and the byte offset, since guessing would lose acknowledged writes.
import type { FileHandle } from 'node:fs/promises';
import { open, readFile, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { removeTornTemps, writeFileDurable } from '../../runtime/durable-file.ts';
import type { Logger } from '../../runtime/logger.ts';
import { ApiServerError } from './errors.ts';

const HEADER_BYTES = 8;
/** No single write is bigger than the request body cap plus the object it replaces; more is corruption. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

export interface WalContents {
  /** The snapshot payload text, or null when there is none yet. */
  readonly snapshot: string | null;
  /** Payloads of the complete records after the snapshot, in order. */
  readonly records: readonly string[];
}

interface Pending {
  readonly data: Buffer;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

export class WriteAheadLog {
  readonly #logPath: string;
  readonly #snapshotPath: string;
  #file: FileHandle;
  #sizeBytes: number;
  #queue: Pending[] = [];
  #flushing: Promise<void> | null = null;
  #compactWith: (() => string) | null = null;
  #failed: Error | null = null;
  #closed = false;

  private constructor(dir: string, file: FileHandle, sizeBytes: number) {
    this.#logPath = join(dir, 'wal.log');
    this.#snapshotPath = join(dir, 'snapshot.json');
    this.#file = file;
    this.#sizeBytes = sizeBytes;
  }

  /** Reads snapshot + records of `dir` (repairing a torn tail) and opens the log for appending. */
  static async open(dir: string, log: Logger): Promise<{ wal: WriteAheadLog; contents: WalContents }> {
    const logPath = join(dir, 'wal.log');
    const snapshotPath = join(dir, 'snapshot.json');
    await removeTornTemps(snapshotPath);
    const snapshot = await readFile(snapshotPath, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    const data = await readFile(logPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return Buffer.alloc(0);
      throw err;
    });
    const { records, validBytes, torn } = decodeRecords(data, logPath);
    if (torn !== null) {
      log.warn(
        { file: logPath, offset: validBytes, bytes: data.length - validBytes, why: torn },
        'torn last WAL record ignored (crash during a write that was never acknowledged)',
      );
      await truncate(logPath, validBytes);
    }
    const file = await open(logPath, 'a', 0o600);
    await file.sync();
    const size = (await stat(logPath)).size;
    return { wal: new WriteAheadLog(dir, file, size), contents: { snapshot, records } };
  }

  get sizeBytes(): number {
    return this.#sizeBytes;
  }

  /** Appends one record; resolves once it is on disk (fsync). Records reach the disk in call order. */
  append(payload: string): Promise<void> {
    if (this.#failed !== null) return Promise.reject(this.#failed);
    if (this.#closed)
      return Promise.reject(new ApiServerError('FERRY_APISERVER_WAL_FAILED', 'write-ahead log is closed'));
    const body = Buffer.from(payload, 'utf8');
    if (body.length > MAX_RECORD_BYTES) {
      return Promise.reject(
        new ApiServerError('FERRY_APISERVER_WAL_FAILED', `record of ${body.length} bytes is too large`),
      );
    }
    const data = Buffer.allocUnsafe(HEADER_BYTES + body.length);
    data.writeUInt32BE(body.length, 0);
    data.writeUInt32BE(crc32(body), 4);
    body.copy(data, HEADER_BYTES);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ data, resolve, reject });
      this.#kick();
    });
  }

  /** Asks for a snapshot (produced by `snapshot()` between two flushes) and an emptied log. */
  requestCompaction(snapshot: () => string): void {
    this.#compactWith = snapshot;
    this.#kick();
  }

  /** Resolves when everything appended so far is durable. */
  async idle(): Promise<void> {
    while (this.#flushing !== null) await this.#flushing;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.idle();
    await this.#file.close();
  }

  #kick(): void {
    if (this.#flushing !== null) return;
    this.#flushing = this.#loop().finally(() => {
      this.#flushing = null;
      // A record appended after the loop saw an empty queue, but before this callback ran, found
      // #flushing still set and did not start a loop: start one for it now.
      if (this.#queue.length > 0 || this.#compactWith !== null) this.#kick();
    });
  }

  async #loop(): Promise<void> {
    while (this.#queue.length > 0 || this.#compactWith !== null) {
      if (this.#compactWith !== null) {
        const snapshot = this.#compactWith;
        this.#compactWith = null;
        await this.#compact(snapshot).catch((err: unknown) => this.#fail(err));
        continue;
      }
      const batch = this.#queue;
      this.#queue = [];
      try {
        await this.#file.write(
          batch.length === 1 ? (batch[0] as Pending).data : Buffer.concat(batch.map((p) => p.data)),
        );
        await this.#file.datasync();
        for (const p of batch) this.#sizeBytes += p.data.length;
        for (const p of batch) p.resolve();
      } catch (err) {
        const failed = this.#fail(err);
        for (const p of batch) p.reject(failed);
      }
      if (this.#failed !== null) {
        for (const p of this.#queue) p.reject(this.#failed);
        this.#queue = [];
        return;
      }
    }
  }

  #fail(err: unknown): Error {
    this.#failed = new ApiServerError(
      'FERRY_APISERVER_WAL_FAILED',
      `writing ${this.#logPath} failed: ${(err as Error).message}`,
      { cause: err },
    );
    return this.#failed;
  }

  // The snapshot holds every change so far (also those still queued: their records are skipped on replay,
  // as their resourceVersions are not above the snapshot's), so the log can start empty after it.
  async #compact(snapshot: () => string): Promise<void> {
    await writeFileDurable(this.#snapshotPath, snapshot(), 0o600);
    await this.#file.truncate(0);
    await this.#file.sync();
    this.#sizeBytes = 0;
  }
}

/** Splits a log into record payloads; a bad record that is not the tail is corruption (thrown). */
export function decodeRecords(
  data: Buffer,
  file: string,
): { records: string[]; validBytes: number; torn: string | null } {
  const records: string[] = [];
  let offset = 0;
  while (offset < data.length) {
    const remaining = data.length - offset;
    if (remaining < HEADER_BYTES) return { records, validBytes: offset, torn: 'incomplete header' };
    const length = data.readUInt32BE(offset);
    const sum = data.readUInt32BE(offset + 4);
    if (length > MAX_RECORD_BYTES) {
      throw corrupt(file, offset, `record length ${length} is larger than ${MAX_RECORD_BYTES}`);
    }
    if (remaining < HEADER_BYTES + length) return { records, validBytes: offset, torn: 'incomplete record' };
    const body = data.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length);
    const last = offset + HEADER_BYTES + length === data.length;
    if (crc32(body) !== sum) {
      // A torn append can leave the tail with a full length but partly written bytes.
      if (last) return { records, validBytes: offset, torn: 'checksum mismatch in the last record' };
      throw corrupt(file, offset, 'checksum mismatch');
    }
    records.push(body.toString('utf8'));
    offset += HEADER_BYTES + length;
  }
  return { records, validBytes: offset, torn: null };
}

function corrupt(file: string, offset: number, why: string): ApiServerError {
  return new ApiServerError(
    'FERRY_APISERVER_WAL_CORRUPT',
    `${file}: corrupt record at byte offset ${offset}: ${why}; refusing to start (move the file away to start empty)`,
  );
}
