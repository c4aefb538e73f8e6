// Sessions: signing in, registering (with user-interactive auth), and the
// credentials kept in localStorage so a reload resumes the session.
import { createClient, MatrixError, type MatrixClient } from "matrix-js-sdk";

export interface Session {
  homeserver: string;
  userId: string;
  deviceId: string;
  accessToken: string;
}

const storageKey = "salon.session";

/** The homeserver is the origin the client was loaded from. */
export function homeserverUrl(): string {
  return window.location.origin;
}

export function loadSession(): Session | null {
  try {
    const raw = localStorage.getItem(storageKey);
    if (!raw) return null;
    const s = JSON.parse(raw) as Partial<Session>;
    if (typeof s.userId !== "string" || typeof s.accessToken !== "string" || typeof s.deviceId !== "string") {
      return null;
    }
    // A session belongs to the server that issued it.
    if (s.homeserver !== homeserverUrl()) return null;
    return s as Session;
  } catch {
    return null;
  }
}

export function saveSession(s: Session): void {
  localStorage.setItem(storageKey, JSON.stringify(s));
}

export function clearSession(): void {
  localStorage.removeItem(storageKey);
}

function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? "Firefox" : /Edg\//.test(ua) ? "Edge" : /Chrom(e|ium)\//.test(ua) ? "Chromium" : /Safari\//.test(ua) ? "Safari" : "browser";
  return `Salon web (${browser})`;
}

/** A client with no credentials, for the login and registration requests. */
export function anonymousClient(): MatrixClient {
  return createClient({ baseUrl: homeserverUrl() });
}

export interface LoginFlows {
  password: boolean;
  sso: boolean;
  token: boolean;
  /** The identity providers of m.login.sso, one "Sign in with" button each. */
  providers: IdentityProvider[];
}

export interface IdentityProvider {
  id: string;
  name: string;
}

export async function loginFlows(): Promise<LoginFlows> {
  const res = await anonymousClient().loginFlows();
  const types = new Set(res.flows.map((f) => f.type));
  const providers: IdentityProvider[] = [];
  for (const f of res.flows) {
    const idps = f.type === "m.login.sso" ? (f as { identity_providers?: unknown }).identity_providers : undefined;
    if (!Array.isArray(idps)) continue;
    for (const p of idps as { id?: unknown; name?: unknown }[]) {
      if (typeof p?.id === "string" && typeof p.name === "string") providers.push({ id: p.id, name: p.name });
    }
  }
  return {
    password: types.has("m.login.password"),
    sso: types.has("m.login.sso") || types.has("m.login.cas"),
    token: types.has("m.login.token"),
    providers,
  };
}

function toSession(res: { user_id: string; device_id?: string; access_token?: string }): Session {
  if (!res.access_token || !res.device_id) {
    throw new Error("the server returned no access token");
  }
  return { homeserver: homeserverUrl(), userId: res.user_id, deviceId: res.device_id, accessToken: res.access_token };
}

export async function loginWithPassword(username: string, password: string): Promise<Session> {
  const user = username.trim();
  const identifier = user.startsWith("@")
    ? { type: "m.id.user", user }
    : { type: "m.id.user", user: user.replace(/^@/, "") };
  const res = await anonymousClient().loginRequest({
    type: "m.login.password",
    identifier,
    password,
    initial_device_display_name: deviceName(),
  });
  return toSession(res);
}

/** Completes an SSO round trip: the server redirected back with ?loginToken=. */
export async function loginWithToken(token: string): Promise<Session> {
  const res = await anonymousClient().loginRequest({
    type: "m.login.token",
    token,
    initial_device_display_name: deviceName(),
  });
  return toSession(res);
}

/** Where a "Sign in with" button goes: the server's redirect endpoint,
 * for one identity provider when idpId is given. */
export function ssoRedirectUrl(idpId?: string): string {
  const back = window.location.origin + window.location.pathname;
  return anonymousClient().getSsoLoginUrl(back, "sso", idpId);
}

/** The stages of user-interactive auth this client can complete. */
const supportedStages = new Set(["m.login.dummy", "m.login.registration_token"]);

export type RegistrationState =
  | { kind: "open"; needsToken: boolean }
  | { kind: "closed" }
  | { kind: "unsupported"; stages: string[] };

interface UIAResponse {
  session?: string;
  flows?: { stages: string[] }[];
  completed?: string[];
}

function uiaData(err: unknown): UIAResponse | null {
  if (err instanceof MatrixError && err.httpStatus === 401 && err.data && Array.isArray((err.data as UIAResponse).flows)) {
    return err.data as UIAResponse;
  }
  return null;
}

/** The first flow made only of stages this client can complete. */
function pickFlow(flows: { stages: string[] }[]): string[] | null {
  const usable = flows.filter((f) => f.stages.every((s) => supportedStages.has(s)));
  usable.sort((a, b) => a.stages.length - b.stages.length);
  return usable[0]?.stages ?? null;
}

/** Asks the server whether and how it lets people register. */
export async function registrationState(): Promise<RegistrationState> {
  try {
    await anonymousClient().registerRequest({});
    // A server that registers without any auth would have created an
    // account with a random name; none known does that.
    return { kind: "open", needsToken: false };
  } catch (err) {
    const uia = uiaData(err);
    if (uia?.flows) {
      const flow = pickFlow(uia.flows);
      if (!flow) return { kind: "unsupported", stages: [...new Set(uia.flows.flatMap((f) => f.stages))] };
      return { kind: "open", needsToken: flow.includes("m.login.registration_token") };
    }
    if (err instanceof MatrixError && (err.errcode === "M_FORBIDDEN" || err.httpStatus === 404)) {
      return { kind: "closed" };
    }
    throw err;
  }
}

export class RegistrationError extends Error {
  constructor(
    readonly code: "unsupported" | "token",
    message: string,
  ) {
    super(message);
  }
}

/**
 * Registers an account through user-interactive auth: the first request
 * learns the flows and the session, then each stage of a supported flow is
 * completed in order (m.login.dummy, m.login.registration_token).
 */
export async function register(username: string, password: string, token: string): Promise<Session> {
  const client = anonymousClient();
  const base = {
    username: username.trim().replace(/^@/, "").toLowerCase(),
    password,
    initial_device_display_name: deviceName(),
  };
  let auth: Record<string, unknown> | undefined;
  for (let round = 0; round < 8; round++) {
    try {
      const res = await client.registerRequest(auth ? { ...base, auth } : base);
      return toSession(res);
    } catch (err) {
      const uia = uiaData(err);
      if (!uia) throw err;
      const flow = pickFlow(uia.flows ?? []);
      if (!flow) {
        throw new RegistrationError("unsupported", [...new Set((uia.flows ?? []).flatMap((f) => f.stages))].join(", "));
      }
      const done = new Set(uia.completed ?? []);
      const next = flow.find((s) => !done.has(s));
      if (!next) throw err;
      if (next === "m.login.registration_token" && auth?.type === next) {
        // The server refused the token we just gave.
        throw new RegistrationError("token", (err as MatrixError).message);
      }
      auth = next === "m.login.registration_token" ? { type: next, token, session: uia.session } : { type: next, session: uia.session };
    }
  }
  throw new Error("registration did not finish");
}

/** Ends the session on the server; the local copy is dropped either way. */
export async function logout(client: MatrixClient): Promise<void> {
  try {
    client.stopClient();
    await client.logout(true);
  } catch {
    // The token may already be invalid; nothing more to do server-side.
  } finally {
    clearSession();
  }
}

/** A message for people from an error of the SDK or the network. */
export function describeError(err: unknown): { key: "error.network" | "error.rateLimited" | null; message: string } {
  if (err instanceof MatrixError) {
    if (err.errcode === "M_LIMIT_EXCEEDED") return { key: "error.rateLimited", message: err.message };
    return { key: null, message: err.data?.error ?? err.message };
  }
  if (err instanceof TypeError) return { key: "error.network", message: err.message };
  return { key: null, message: err instanceof Error ? err.message : String(err) };
}
