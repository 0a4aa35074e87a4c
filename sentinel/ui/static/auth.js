// Sign-in. The access token lives in this module's memory only: never in localStorage, sessionStorage or
// a cookie. sessionStorage holds only what must survive the redirect to the identity provider (the PKCE
// verifier, state and nonce, removed on return) and a flag saying this tab was signed in, so a reload
// signs in again (through the provider's own session; in dev mode with the same tenant).

const memory = { token: null, expiresAt: 0, refreshToken: null, idToken: null, claims: null, timer: null, dev: null };
let config = null;
let discovery = null;
const listeners = new Set();

const DEV_KEY = "sentinel.dev-sign-in";
const OIDC_ACTIVE = "sentinel.oidc-active";
const OIDC_PENDING = "sentinel.oidc-pending";
const REFRESH_AT = 0.75; // of the token's lifetime

export function configure(cfg) { config = cfg; }
export function onChange(fn) { listeners.add(fn); }
function changed() { for (const fn of listeners) fn(signedIn()); }

export function signedIn() { return memory.token !== null && Date.now() < memory.expiresAt; }

export function principal() {
  const claims = memory.claims || {};
  const roles = claims.roles || claims.realm_access?.roles || [];
  return { tenant: claims[config.tenantClaim], subject: claims.sub, roles: Array.isArray(roles) ? roles : [] };
}

function b64urlDecode(part) {
  const text = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
  return new TextDecoder().decode(Uint8Array.from(text, (c) => c.charCodeAt(0)));
}

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(bytes = 32) { return b64url(crypto.getRandomValues(new Uint8Array(bytes))); }

function claimsOf(jwt) {
  try { return JSON.parse(b64urlDecode(jwt.split(".")[1])); } catch { return null; }
}

function keep(answer) {
  // For display only (tenant name, roles): the server checks the token on every call.
  memory.token = answer.access_token;
  memory.claims = claimsOf(answer.access_token) || {};
  const lifetime = Number(answer.expires_in) || (memory.claims.exp ? memory.claims.exp - Date.now() / 1000 : 300);
  memory.expiresAt = Date.now() + lifetime * 1000;
  if (answer.refresh_token) memory.refreshToken = answer.refresh_token;
  if (answer.id_token) memory.idToken = answer.id_token;
  clearTimeout(memory.timer);
  memory.timer = setTimeout(refresh, Math.max(5, lifetime * REFRESH_AT) * 1000);
  changed();
}

function forget() {
  clearTimeout(memory.timer);
  Object.assign(memory, { token: null, expiresAt: 0, refreshToken: null, idToken: null, claims: null, timer: null, dev: null });
  changed();
}

// -- dev mode --------------------------------------------------------------------------------------
export async function devSignIn(tenant, admin) {
  const answer = await fetch("/ui/dev/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ tenant, admin }),
  });
  if (!answer.ok) throw new Error((await problemText(answer)) || `dev sign-in failed (${answer.status})`);
  memory.dev = { tenant, admin };
  sessionStorage.setItem(DEV_KEY, JSON.stringify(memory.dev));
  keep(await answer.json());
}

// -- OpenID Connect, Authorization Code + PKCE ---------------------------------------------------------
async function discover() {
  if (discovery) return discovery;
  const base = config.issuer.replace(/\/+$/, "");
  const answer = await fetch(`${base}/.well-known/openid-configuration`, { credentials: "omit" });
  if (!answer.ok) throw new Error(`identity provider discovery failed (${answer.status})`);
  discovery = await answer.json();
  return discovery;
}

function redirectUri() { return `${location.origin}/ui/callback`; }

export async function startOidc(returnTo = location.pathname + location.search) {
  if (!config.clientId) throw new Error("sign-in is not configured: set SENTINEL_UI_CLIENT_ID on the server");
  const meta = await discover();
  const verifier = randomString(48);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const pending = { state: randomString(), nonce: randomString(), verifier, returnTo };
  sessionStorage.setItem(OIDC_PENDING, JSON.stringify(pending));
  const url = new URL(meta.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.clientId,
    redirect_uri: redirectUri(),
    scope: config.scopes,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
}

async function tokenRequest(form) {
  const meta = await discover();
  const answer = await fetch(meta.token_endpoint, {
    method: "POST",
    credentials: "omit",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: config.clientId, ...form }).toString(),
  });
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(body.error_description || body.error || `token request failed (${answer.status})`);
  return body;
}

/** On /ui/callback: trade the code for tokens; answers the path to go back to. */
export async function completeOidc() {
  const params = new URLSearchParams(location.search);
  const pending = JSON.parse(sessionStorage.getItem(OIDC_PENDING) || "null");
  sessionStorage.removeItem(OIDC_PENDING);
  if (params.get("error")) throw new Error(params.get("error_description") || params.get("error"));
  if (!pending || params.get("state") !== pending.state) throw new Error("sign-in answer does not match this tab's request; sign in again");
  const answer = await tokenRequest({
    grant_type: "authorization_code",
    code: params.get("code") || "",
    redirect_uri: redirectUri(),
    code_verifier: pending.verifier,
  });
  if (answer.id_token && claimsOf(answer.id_token)?.nonce !== pending.nonce) throw new Error("sign-in answer has the wrong nonce");
  keep(answer);
  sessionStorage.setItem(OIDC_ACTIVE, "1");
  return pending.returnTo && pending.returnTo.startsWith("/ui") ? pending.returnTo : "/ui";
}

async function refresh() {
  try {
    if (memory.dev) return await devSignIn(memory.dev.tenant, memory.dev.admin);
    if (memory.refreshToken) return keep(await tokenRequest({ grant_type: "refresh_token", refresh_token: memory.refreshToken }));
    return await startOidc();
  } catch (err) {
    console.warn("token refresh failed:", err);
    forget();
  }
}

/** A page load: sign in again if this tab was signed in (the token itself did not survive the load). */
export async function resume() {
  if (config.dev) {
    const saved = JSON.parse(sessionStorage.getItem(DEV_KEY) || "null");
    if (saved) await devSignIn(saved.tenant, saved.admin);
    return;
  }
  if (sessionStorage.getItem(OIDC_ACTIVE)) await startOidc();
}

export async function signOut() {
  const idToken = memory.idToken;
  const refreshToken = memory.refreshToken;
  const wasOidc = !memory.dev && memory.token !== null && !config.dev;
  forget();
  sessionStorage.removeItem(DEV_KEY);
  sessionStorage.removeItem(OIDC_ACTIVE);
  if (!wasOidc) return;
  const meta = await discover().catch(() => null);
  if (meta?.revocation_endpoint && refreshToken) {
    await fetch(meta.revocation_endpoint, {
      method: "POST",
      credentials: "omit",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: config.clientId, token: refreshToken, token_type_hint: "refresh_token" }).toString(),
    }).catch(() => null);
  }
  if (meta?.end_session_endpoint) {
    const url = new URL(meta.end_session_endpoint);
    url.search = new URLSearchParams({
      client_id: config.clientId,
      post_logout_redirect_uri: `${location.origin}/ui`,
      ...(idToken ? { id_token_hint: idToken } : {}),
    }).toString();
    location.assign(url.toString());
  }
}

export async function problemText(answer) {
  try {
    const body = await answer.json();
    return body.detail || body.title || "";
  } catch {
    return "";
  }
}

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** fetch() against this server with the bearer token; a 401 signs the page out. */
export async function api(path, { headers = {}, signal } = {}) {
  if (!signedIn()) throw new ApiError(401, "not signed in");
  const answer = await fetch(path, { headers: { ...headers, Authorization: `Bearer ${memory.token}` }, signal, credentials: "omit" });
  if (answer.status === 401) {
    forget();
    throw new ApiError(401, "the session ended; sign in again");
  }
  return answer;
}

export async function apiJson(path, options) {
  const answer = await api(path, options);
  if (!answer.ok) throw new ApiError(answer.status, (await problemText(answer)) || `${answer.status} ${answer.statusText}`);
  return answer.json();
}
