/**
 * Who the page calls the service as: a bearer token, and for the service's unauthenticated dev mode a principal name.
 *
 * They are kept in sessionStorage, never localStorage: a token must not outlive the tab it was typed into. A link may
 * carry them in its fragment (`#token=…&principal=…`), which browsers never send to a server; the page moves them
 * into sessionStorage and drops the fragment, so the token does not stay in the address bar or the history.
 */

export interface Credentials {
  token: string;
  principal: string;
}

const TOKEN_KEY = "modelcopy.dashboard.token";
const PRINCIPAL_KEY = "modelcopy.dashboard.principal";

/** The credentials this tab saved, or undefined if it never connected (or storage is unavailable). */
export function loadSaved(): Credentials | undefined {
  try {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const principal = sessionStorage.getItem(PRINCIPAL_KEY);
    if (token === null && principal === null) return undefined;
    return { token: token ?? "", principal: principal ?? "" };
  } catch {
    return undefined;
  }
}

export function save(credentials: Credentials): void {
  try {
    sessionStorage.setItem(TOKEN_KEY, credentials.token);
    sessionStorage.setItem(PRINCIPAL_KEY, credentials.principal);
  } catch {
    // Storage refused (private mode, quota): the page still works, it only forgets on reload.
  }
}

/**
 * Takes `token` and `principal` out of the location's fragment, removing the fragment. Parsed by hand rather than
 * with URLSearchParams, which would turn a `+` of an opaque token into a space.
 */
export function takeFromFragment(location: Location, history: History): Partial<Credentials> | undefined {
  const fragment = location.hash.replace(/^#/, "");
  if (fragment === "") return undefined;
  const found: Partial<Credentials> = {};
  for (const pair of fragment.split("&")) {
    const at = pair.indexOf("=");
    if (at < 0) continue;
    const key = pair.slice(0, at);
    const value = safeDecode(pair.slice(at + 1));
    if (key === "token") found.token = value;
    if (key === "principal") found.principal = value;
  }
  if (found.token === undefined && found.principal === undefined) return undefined;
  history.replaceState(null, "", location.pathname + location.search);
  return found;
}

/** The metadata every call carries: only what was given, so an empty field sends nothing. */
export function callHeaders(credentials: Credentials): [string, string][] {
  const headers: [string, string][] = [];
  if (credentials.token !== "") headers.push(["authorization", `Bearer ${credentials.token}`]);
  if (credentials.principal !== "") headers.push(["x-modelcopy-principal", credentials.principal]);
  return headers;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
