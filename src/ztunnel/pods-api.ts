// Admin endpoints of the in-pod mode (the role istio-cni's ZDS socket plays for Istio): `GET /pods` lists
// enrollments, `POST /pods` {uid, netnsPath, cgroupPath} enrolls, `DELETE /pods/<uid>` unenrolls. The admin
// server stays on loopback and refuses browser-originated changes (src/runtime/admin.ts), so only local
// tooling (`ferry up`, `ferry label`, tests) can drive it.
import type { HttpReply, HttpRequestInfo, Route } from '../runtime/http-server.ts';
import { InPodError, inPodHttpStatus } from './in-pod-errors.ts';

/** What the routes need from the ztunnel. */
export interface PodEnrollmentApi {
  enrollPod(request: unknown): Promise<unknown>;
  unenrollPod(uid: string): Promise<boolean>;
  pods(): unknown;
}

const MAX_BODY_BYTES = 16 * 1024;

const json = (status: number, value: unknown): HttpReply => ({
  status,
  body: `${JSON.stringify(value, null, 2)}\n`,
  contentType: 'application/json',
});

const FORBIDDEN: HttpReply = { status: 403, body: 'admin changes are not accepted from browsers\n' };

export function podRoutes(api: PodEnrollmentApi): Route[] {
  return [
    {
      path: '/pods',
      description: 'GET: enrolled pods; POST {uid, netnsPath, cgroupPath}: enroll a pod (in-pod mode)',
      maxBodyBytes: MAX_BODY_BYTES,
      methods: {
        GET: () => json(200, { pods: api.pods() }),
        POST: async (req) => {
          if (req.headers.origin !== undefined) return FORBIDDEN;
          let body: unknown;
          try {
            body = JSON.parse(req.body ?? '');
          } catch {
            return errorReply(new InPodError('FERRY_INPOD_BAD_REQUEST', 'body is not JSON'));
          }
          try {
            return json(200, { pod: await api.enrollPod(body) });
          } catch (err) {
            return errorReply(err);
          }
        },
      },
    },
    {
      path: '/pods/',
      prefix: true,
      description: 'DELETE /pods/<uid>: unenroll a pod (its open connections continue)',
      methods: {
        DELETE: async (req: HttpRequestInfo) => {
          if (req.headers.origin !== undefined) return FORBIDDEN;
          let uid: string;
          try {
            uid = decodeURIComponent(req.path.slice('/pods/'.length));
          } catch {
            return errorReply(new InPodError('FERRY_INPOD_BAD_REQUEST', 'bad percent-encoding in the uid'));
          }
          try {
            const removed = await api.unenrollPod(uid);
            return removed ? json(200, { uid, unenrolled: true }) : json(404, { uid, unenrolled: false });
          } catch (err) {
            return errorReply(err);
          }
        },
      },
    },
  ];
}

function errorReply(err: unknown): HttpReply {
  if (err instanceof InPodError) return json(inPodHttpStatus(err.code), { code: err.code, error: err.message });
  throw err; // a bug: the server answers 500 and logs it
}
