// The version every process reports (istio_build's tag, `ferry --version`): package.json's, read once at
// load, so it is right however the process was started (not only under `npm run`).
import pkg from '../../package.json' with { type: 'json' };

export const FERRY_VERSION: string = pkg.version;
