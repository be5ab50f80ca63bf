// Error codes of delta xDS, both ends (controller server, ztunnel client). Callers branch on `code`.
// Expected outcomes (a rejected resource, a NACK) are values carrying these codes; the
// codes appear in log lines and in the rejection values (typed with XdsErrorCode).

export const XDS_ERROR_CODES = [
  'FERRY_XDS_RESOURCE_REJECTED', // a received resource failed validation: the response was NACKed, config kept
  'FERRY_XDS_NACKED', // (server) a client rejected a push; logged with its node id, not resent
  'FERRY_XDS_STREAM_FAILED', // (client) the stream to the controller broke; reconnecting with backoff
  'FERRY_XDS_BAD_REQUEST', // (server) a request the server cannot serve (unknown type URL, unknown nonce)
] as const;

export type XdsErrorCode = (typeof XDS_ERROR_CODES)[number];
