import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";

export interface MachineInfo {
  date: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  wrangler: string;
  workerd: string;
  miniflare: string;
}

const versionOf = (name: string) =>
  (JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8")) as { version: string }).version;

export function machineInfo(): MachineInfo {
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    wrangler: versionOf("wrangler"),
    workerd: versionOf("workerd"),
    miniflare: versionOf("miniflare"),
  };
}
