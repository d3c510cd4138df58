import { version } from "../package.json";

export const RELAY_NAME = "pendo-segment-relay";
export const RELAY_VERSION: string = version;
