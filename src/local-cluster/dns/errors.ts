// Errors of the local cluster's DNS server (src/local-cluster/dns). One code union, one class; callers
// branch on `code`. Per-query problems are never errors: they become DNS rcodes (answer.ts).
import { FerryError } from '../../errors.ts';

export const DNS_ERROR_CODES = [
  'FERRY_DNS_BAD_UPSTREAM', // the upstream resolver configuration (resolv.conf) is unreadable or names none
  'FERRY_DNS_UPSTREAM_FAILED', // no upstream nameserver answered a forwarded query in time (client gets SERVFAIL)
  'FERRY_DNS_LISTEN_FAILED', // the DNS server could not open its UDP or TCP socket (address in use, netns gone)
  'FERRY_DNS_RESOLV_CONF_FAILED', // a pod's /etc/netns/<netns>/resolv.conf could not be written
] as const;

export type DnsErrorCode = (typeof DNS_ERROR_CODES)[number];

export class DnsError extends FerryError<DnsErrorCode> {}
