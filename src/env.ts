import type { RelayMessage } from "./delivery/message";

/**
 * The Worker's bindings, as declared in wrangler.toml. Vars and secrets arrive as strings (or
 * not at all); `config.ts` is the one place that turns them into typed settings.
 */
export interface Env {
  DEDUP: KVNamespace;
  EVENTS: Queue<RelayMessage>;

  WEBHOOK_TOKEN?: string;
  SOURCES?: string;
  SEGMENT_WRITE_KEY?: string;
  SEGMENT_ENDPOINT?: string;
  ADMIN_TOKEN?: string;
  ENVIRONMENT?: string;
  EVENT_NAMES?: string;
  TRACK_EVENTS?: string;
  HONOR_DO_NOT_PROCESS?: string;
  DEDUP_TTL_SECONDS?: string;
  DEAD_LETTER_TTL_SECONDS?: string;
  MAX_BODY_BYTES?: string;
  SEGMENT_TIMEOUT_MS?: string;
  RETRY_BASE_SECONDS?: string;
  RETRY_MAX_SECONDS?: string;
  MAX_RETRIES?: string;
}
