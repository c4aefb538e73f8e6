// What the Node programs run by 7-e2ee.test.mjs (e2ee-clients.mjs,
// e2ee-dehydrated.mjs) share: matrix-js-sdk loaded for Node, and the
// plain HTTP calls that make their accounts on the server at $BASE.
//
// Node 20 lacks Promise.withResolvers, which the SDK uses: node20.mjs
// defines it before the SDK loads (hence the dynamic import).
import "./node20.mjs";
// The SDK logs every step to the console: keep it for E2EE_DEBUG=1.
export const say = (line) => process.stdout.write(line + "\n");
if (!process.env.E2EE_DEBUG) {
  for (const k of ["log", "info", "debug", "warn", "trace"]) console[k] = () => {};
}
export const sdk = await import("matrix-js-sdk");

export const BASE = process.env.BASE;
export const stamp = Date.now().toString(36);

export async function api(token, method, path, body) {
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  return { status: res.status, data };
}

/** A new account whose password is "password <name>". */
export async function register(name) {
  const body = { username: name, password: `password ${name}` };
  let r = await api(null, "POST", "/_matrix/client/v3/register", body);
  r = await api(null, "POST", "/_matrix/client/v3/register", { ...body, auth: { type: "m.login.dummy", session: r.data.session } });
  if (r.status !== 200) throw new Error(`register ${name}: ${JSON.stringify(r.data)}`);
  return r.data;
}

/** A new session (device) of an account made by register. */
export async function login(name) {
  const r = await api(null, "POST", "/_matrix/client/v3/login", {
    type: "m.login.password",
    identifier: { type: "m.id.user", user: name },
    password: `password ${name}`,
  });
  if (r.status !== 200) throw new Error(`login ${name}: ${JSON.stringify(r.data)}`);
  return r.data;
}
