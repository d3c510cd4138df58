import type { SettingName } from "./config";

/**
 * The Worker's env: the bindings and vars wrangler.toml declares, as `npm run cf-typegen`
 * (`wrangler types`) writes them into worker-configuration.d.ts (`WranglerEnv`), and every
 * setting of the settings schema as an optional string: a secret, or a var left at its default,
 * is not in wrangler.toml. A binding or var added to wrangler.toml needs only a rerun of
 * `npm run cf-typegen`; config.ts is the one place that turns settings into typed values.
 */
export type Env = WranglerEnv & Partial<Record<SettingName, string>>;
