/**
 * The admin token, for this tab only (sessionStorage), and every call of the admin API with it
 * as Bearer. The token never travels in a URL: `npm start` prints it in the fragment, which the
 * page reads and takes out of the address bar (main.ts).
 */
const KEY = "pendo-relay-admin-token";

let token = sessionStorage.getItem(KEY);
let onRefused: (message: string) => void = () => undefined;

export const session = {
  get token() {
    return token;
  },
  set(value: string) {
    token = value;
    sessionStorage.setItem(KEY, value);
  },
  clear() {
    token = null;
    sessionStorage.removeItem(KEY);
  },
  /** What to do when the relay refuses the token (sign out): set once by main.ts. */
  whenRefused(handler: (message: string) => void) {
    onRefused = handler;
  },
};

export interface Answer<T> {
  status: number;
  /** The JSON answer; `{}` when there was none. Fields the console reads are optional. */
  body: Partial<T>;
}

export async function api<T = Record<string, unknown>>(
  path: string,
  init: RequestInit = {},
): Promise<Answer<T>> {
  const response = await fetch(path, {
    ...init,
    headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` },
  });
  const body = (await response.json().catch(() => ({}))) as Partial<T>;
  if (response.status === 401) onRefused("The admin token was refused.");
  return { status: response.status, body };
}
