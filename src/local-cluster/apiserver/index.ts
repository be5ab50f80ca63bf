// The local Kubernetes API server's public surface (docs/architecture.md, "Local Kubernetes API server"):
// start one, write a kubeconfig for it, and the CRDs of the kinds Ferry reads.
export { crdManifests, FERRY_CRDS } from './crds.ts';
export { APISERVER_ERROR_CODES, ApiServerError, type ApiServerErrorCode } from './errors.ts';
export { type KubeconfigParams, kubeconfigText, writeKubeconfig } from './kubeconfig.ts';
export { type ApiServer, type ApiServerOptions, startApiServer } from './server.ts';
