// Errors of the in-pod mode (pod enrollment into this ztunnel through the BPF redirector). One code union,
// one class; the admin API maps each code to an HTTP status. Every code is listed in docs/errors.md.
import { FerryError } from '../errors.ts';

export const INPOD_ERROR_CODES = [
  'FERRY_INPOD_DISABLED', // enrollment asked of a ztunnel started without a redirector (--redirect bpf)
  'FERRY_INPOD_BAD_REQUEST', // enrollment request malformed (uid, netnsPath, cgroupPath missing or not strings)
  'FERRY_INPOD_UNKNOWN_WORKLOAD', // no workload with that uid in the mesh config
  'FERRY_INPOD_NOT_LOCAL', // the workload runs on another node, or has no IPv4 address
  'FERRY_INPOD_CONFLICT', // uid already enrolled with other paths, or another uid owns the pod IP
  'FERRY_INPOD_ENROLL_FAILED', // the datapath or in-pod listeners could not be set up; nothing was left behind
  'FERRY_INPOD_NO_ORIGINAL_DST', // a 15001 connection without an original destination in the BPF maps
] as const;

export type InPodErrorCode = (typeof INPOD_ERROR_CODES)[number];

export class InPodError extends FerryError<InPodErrorCode> {}

/** HTTP status of each code for the admin API (client mistakes 4xx, datapath failures 5xx). */
export function inPodHttpStatus(code: InPodErrorCode): number {
  switch (code) {
    case 'FERRY_INPOD_BAD_REQUEST':
      return 400;
    case 'FERRY_INPOD_UNKNOWN_WORKLOAD':
      return 404;
    case 'FERRY_INPOD_NOT_LOCAL':
    case 'FERRY_INPOD_CONFLICT':
      return 409;
    case 'FERRY_INPOD_DISABLED':
      return 501;
    case 'FERRY_INPOD_ENROLL_FAILED':
    case 'FERRY_INPOD_NO_ORIGINAL_DST':
      return 500;
    default:
      return assertNever(code);
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected code ${String(value)}`);
}
