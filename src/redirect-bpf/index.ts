// Public surface of the BPF redirector (docs/redirect.md) for the ztunnel, the CLI (`ferry doctor`, `ferry down`)
// and tests. Everything else in this folder is internal.
export { BPF_SOURCE_DIR, buildBpfObject, SHIPPED_BPF_OBJECT, shippedBpfObject } from './build.ts';
export {
  type EnrollPodOptions,
  PORT_HBONE,
  PORT_INBOUND_PLAINTEXT,
  PORT_OUTBOUND,
  type PodEnrollment,
  type PodListenerFds,
  type UnenrollPodOptions,
} from './enroll.ts';
export { BPF_ERROR_CODES, BpfError, type BpfErrorCode } from './errors.ts';
export type { Cidr, OriginalDestination, PodClass, RedirectConfig, RedirectCounters } from './layout.ts';
export {
  type AcceptedSocket,
  BpfRedirector,
  DEFAULT_PIN_ROOT,
  type RedirectorOptions,
  uninstallPins,
} from './loader.ts';
export { closeFd, createBoundSocketFd, createListenerFd, inNetns, openNetns, socketNetnsCookie } from './netns.ts';
export {
  assertRedirectorSupported,
  cgroup2MountPoint,
  type FeatureCheck,
  type FeatureReport,
  probeFeatures,
} from './probe.ts';
