/** The token of an `Authorization: Bearer` header, if there is one. */
export function bearerToken(request: Request): string | undefined {
  const header = request.headers.get("authorization");
  const match = header ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
  return match?.[1]?.trim() || undefined;
}

/**
 * Pendo URL webhooks only let the user paste a URL, so the token may come in the query string
 * (`?token=`); other senders can use `Authorization: Bearer`. Either is compared in constant time.
 */
export function presentedToken(request: Request): string | undefined {
  return bearerToken(request) ?? (new URL(request.url).searchParams.get("token") || undefined);
}

/**
 * The admin check shared by /admin, /health details and /debug: Bearer only, never the query
 * string (an operator can set a header, and a token in a URL ends up in shell history and logs).
 */
export function isAdmin(request: Request, adminToken: string | undefined): Promise<boolean> {
  if (!adminToken) return Promise.resolve(false);
  return tokenMatches(bearerToken(request), [adminToken]);
}

const encoder = new TextEncoder();

async function digest(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(text));
}

// The configured tokens' digests, once per isolate rather than once per request. Bounded by the
// tokens in the configuration; a presented token is never cached.
const configuredDigests = new Map<string, Promise<ArrayBuffer>>();
function configuredDigest(token: string): Promise<ArrayBuffer> {
  let cached = configuredDigests.get(token);
  if (!cached) {
    cached = digest(token);
    configuredDigests.set(token, cached);
  }
  return cached;
}

/**
 * Hashing both sides first gives equal-length inputs, so timingSafeEqual leaks neither the
 * token's content nor its length. Every configured token is compared, match or not.
 */
export async function tokenMatches(
  presented: string | undefined,
  accepted: readonly string[],
): Promise<boolean> {
  if (!presented || accepted.length === 0) return false;
  const candidate = await digest(presented);
  let matched = false;
  for (const token of accepted) {
    if (crypto.subtle.timingSafeEqual(candidate, await configuredDigest(token))) matched = true;
  }
  return matched;
}
