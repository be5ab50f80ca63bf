// Codes of the controller's own work on a Kubernetes API beyond reading it: the shared CA Secret, the
// waypoint template and the objects made from it (docs/errors.md, "Controller: objects it writes").
import { FerryError } from '../errors.ts';

export const CONTROLLER_ERROR_CODES = [
  'FERRY_CONTROLLER_CA_SECRET_INVALID', // the --ca-secret Secret lacks a key or holds no usable CA
  'FERRY_CONTROLLER_WAYPOINT_TEMPLATE_INVALID', // --waypoint-template is unreadable or not the expected objects
  'FERRY_CONTROLLER_NOT_MANAGED', // an object Ferry would write exists without Ferry's managed-by label: left alone
] as const;

export type ControllerErrorCode = (typeof CONTROLLER_ERROR_CODES)[number];

export class ControllerError extends FerryError<ControllerErrorCode> {}
