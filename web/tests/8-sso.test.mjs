// Scenario 8: single sign-on through a real SAML IdP. A student opens the
// web client, presses "Sign in with University", signs in on
// SimpleSAMLphp's own login page and lands in Salon signed in; the same
// again after signing out reaches the same account.
//
// Then a client that is not Salon's: matrix-js-sdk's SSO helpers, as any
// Matrix client uses them. loginFlows() lists the provider,
// getSsoLoginUrl() starts the sign-in, Chromium goes through
// SimpleSAMLphp's form and lands on the client's own page (another
// origin, listed in sso.client_origins) with ?loginToken=, which
// loginRequest() exchanges with m.login.token; the token works once.
// Sent to an origin that is not listed, the token waits behind Salon's
// "Continue to …?" page.
//
// SimpleSAMLphp is Debian's package served by PHP's built-in web server on
// loopback, configured here in a temporary directory (scripts/test-deps.sh
// installs it). Without it the scenario skips, and under CI=true fails.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createServer as createHTTPServer } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { launchBrowser, newPerson, scenario, startStack, until } from "./harness.mjs";

const www = "/usr/share/simplesamlphp/www";
const installed = existsSync(`${www}/saml2/idp/SSOService.php`) && existsSync("/usr/bin/php");
if (!installed && process.env.CI === "true") {
  throw new Error("SimpleSAMLphp is not installed and CI=true: run scripts/test-deps.sh");
}

let idp;
let stack;
let browser;
let thirdParty;

/**
 * Another Matrix client's web page, on an origin of its own: it records
 * the login tokens it is sent back with.
 */
async function startThirdPartyClient() {
  const tokens = [];
  const srv = createHTTPServer((req, res) => {
    const u = new URL(req.url, "http://127.0.0.1");
    const token = u.searchParams.get("loginToken");
    if (token) tokens.push({ path: u.pathname, token });
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>Another client</title><p>Signing you in…</p>");
  });
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${srv.address().port}`,
    tokens,
    stop: () => new Promise((resolve) => srv.close(resolve)),
  };
}

function freeTCPPort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts SimpleSAMLphp with one user, student1 / student1pass. */
async function startSimpleSAMLphp() {
  const dir = mkdtempSync(path.join(tmpdir(), "salon-simplesamlphp-"));
  for (const d of ["config", "metadata", "cert", "tmp", "log", "sessions"]) mkdirSync(path.join(dir, d));
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=SimpleSAMLphp test IdP",
    "-keyout", path.join(dir, "cert/idp.key"), "-out", path.join(dir, "cert/idp.crt")], { stdio: "ignore" });
  const port = await freeTCPPort();
  const url = `http://127.0.0.1:${port}`;
  const metadataURL = `${url}/saml2/idp/metadata.php`;
  writeFileSync(path.join(dir, "config/config.php"), `<?php
$config = [
    'baseurlpath' => '${url}/',
    'certdir' => '${dir}/cert/',
    'loggingdir' => '${dir}/log/',
    'datadir' => '${dir}/tmp/',
    'tempdir' => '${dir}/tmp/',
    'metadatadir' => '${dir}/metadata/',
    'metadata.sources' => [['type' => 'flatfile', 'directory' => '${dir}/metadata/']],
    'secretsalt' => 'salon-web-test-salt-0123456789',
    'auth.adminpassword' => 'salon-test-admin',
    'technicalcontact_name' => 'Salon tests',
    'technicalcontact_email' => 'tests@salon.example',
    'timezone' => 'UTC',
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'enable.saml20-idp' => true,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true, 'admin' => true],
    'session.cookie.secure' => false,
    'session.phpsession.savepath' => '${dir}/sessions',
    'store.type' => 'phpsession',
    'language.available' => ['en'],
    'language.default' => 'en',
];
`);
  writeFileSync(path.join(dir, "config/authsources.php"), `<?php
$config = [
    'admin' => ['core:AdminPassword'],
    'students' => [
        'exampleauth:UserPass',
        'student1:student1pass' => ['uid' => ['student1'], 'displayName' => ['Student One'], 'mail' => ['student1@uni.example']],
    ],
];
`);
  writeFileSync(path.join(dir, "metadata/saml20-idp-hosted.php"), `<?php
$metadata['${metadataURL}'] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key',
    'certificate' => 'idp.crt',
    'auth' => 'students',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
];
`);
  writeFileSync(path.join(dir, "metadata/saml20-sp-remote.php"), "<?php\n");
  const child = spawn("php", ["-S", `127.0.0.1:${port}`, "-t", www], {
    env: { ...process.env, SIMPLESAMLPHP_CONFIG_DIR: path.join(dir, "config") },
    stdio: "ignore",
  });
  await until("SimpleSAMLphp serves its metadata", async () => {
    const body = await fetch(metadataURL).then((r) => r.text(), () => "");
    return body.includes("IDPSSODescriptor");
  }, 30_000);
  return {
    url,
    metadataURL,
    /** Trusts Salon's service provider (its entity ID, ACS and certificate). */
    trust(entityID, acs, certPem) {
      const certData = certPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
      writeFileSync(path.join(dir, "metadata/saml20-sp-remote.php"), `<?php
$metadata['${entityID}'] = [
    'AssertionConsumerService' => [['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', 'Location' => '${acs}']],
    'certData' => '${certData}',
    'validate.authnrequest' => true,
];
`);
    },
    async stop() {
      child.kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

before(async () => {
  if (!installed) return;
  idp = await startSimpleSAMLphp();
  thirdParty = await startThirdPartyClient();
  stack = await startStack({
    config: `metrics:
  listen: 127.0.0.1:0
sso:
  client_origins: ["${thirdParty.origin}"]
  saml:
    - id: uni
      name: University
      idp_metadata_url: ${idp.metadataURL}
      attributes:
        subject: uid
`,
  });
  // Salon made its SAML key pair at start; the IdP trusts its certificate.
  const cert = readFileSync(path.join(stack.dataDir, "sso", "saml-uni.crt"), "utf8");
  idp.trust(`${stack.api}/_salon/sso/uni/metadata`, `${stack.api}/_salon/sso/uni/callback`, cert);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
  await idp?.stop();
  await thirdParty?.stop();
});

test("scenario 8: sign in with University (SAML, SimpleSAMLphp)", { timeout: 120_000, skip: !installed && "SimpleSAMLphp is not installed" }, async () => {
  const student = await newPerson(browser, "student");
  const { page } = student;
  await scenario("scenario-8-sso", [student], async () => {
    await page.goto(stack.url);
    const button = page.getByRole("link", { name: "Sign in with University" });
    await button.click();
    // SimpleSAMLphp's own login page.
    await page.waitForURL((u) => u.href.startsWith(idp.url));
    await page.locator("#username").fill("student1");
    await page.locator("#password").fill("student1pass");
    await page.locator("#submit_button").click();
    // Back through Salon's assertion consumer to the client, signed in.
    const me = page.getByRole("button", { name: "@student1:localhost: settings and sign out" });
    await me.waitFor({ timeout: 60_000 });
    assert.ok(!page.url().includes("loginToken"), "the login token is gone from the address bar");
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem("salon.session") ?? "null"));
    assert.equal(stored?.userId, "@student1:localhost");

    // Sign out and in again: the IdP remembers the student, and it is the
    // same account.
    await me.click();
    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.getByRole("link", { name: "Sign in with University" }).click();
    await me.waitFor({ timeout: 60_000 });
    const again = await page.evaluate(() => JSON.parse(localStorage.getItem("salon.session") ?? "null"));
    assert.equal(again?.userId, "@student1:localhost");
    assert.notEqual(again.deviceId, stored.deviceId, "a new session");
  });
});

test("scenario 8b: matrix-js-sdk's SSO helpers sign in through SimpleSAMLphp", { timeout: 120_000, skip: !installed && "SimpleSAMLphp is not installed" }, async () => {
  const sdk = await import("matrix-js-sdk");
  const client = sdk.createClient({ baseUrl: stack.api });
  const person = await newPerson(browser, "js-sdk");
  const { page } = person;
  await scenario("scenario-8b-sso-js-sdk", [person], async () => {
    // The login flows name the provider.
    const { flows } = await client.loginFlows();
    const sso = flows.find((f) => f.type === "m.login.sso");
    assert.deepEqual(sso?.identity_providers?.map((p) => [p.id, p.name]), [["uni", "University"]]);
    assert.ok(flows.some((f) => f.type === "m.login.token"), "m.login.token is offered");

    // The browser goes where getSsoLoginUrl says, signs in at the IdP, and
    // comes back to the client's page with a login token.
    const back = `${thirdParty.origin}/signed-in`;
    await page.goto(client.getSsoLoginUrl(back, "sso", "uni"));
    await page.waitForURL((u) => u.href.startsWith(idp.url));
    await page.locator("#username").fill("student1");
    await page.locator("#password").fill("student1pass");
    await page.locator("#submit_button").click();
    await page.waitForURL((u) => u.href.startsWith(back), { timeout: 60_000 });
    const token = new URL(page.url()).searchParams.get("loginToken");
    assert.ok(token, "a login token in the client's address");
    assert.deepEqual(thirdParty.tokens.at(-1), { path: "/signed-in", token });

    // The SDK exchanges it.
    const res = await client.loginRequest({ type: "m.login.token", token, initial_device_display_name: "js-sdk" });
    assert.equal(res.user_id, "@student1:localhost");
    const signedIn = sdk.createClient({ baseUrl: stack.api, accessToken: res.access_token, userId: res.user_id, deviceId: res.device_id });
    assert.equal((await signedIn.whoami()).user_id, "@student1:localhost");
    // A token works once.
    await assert.rejects(client.loginRequest({ type: "m.login.token", token }), (e) => e.errcode === "M_FORBIDDEN");

    // An origin the server does not list gets the token only after the
    // person confirms it on Salon's page (no open redirect). The IdP
    // remembers the student, so this round trip needs no password.
    const elsewhere = `http://localhost:${new URL(thirdParty.origin).port}/elsewhere`;
    const before = thirdParty.tokens.length;
    await page.goto(client.getSsoLoginUrl(elsewhere, "sso", "uni"));
    const cont = page.getByRole("link", { name: `Continue to localhost:${new URL(thirdParty.origin).port}` });
    await cont.waitFor({ timeout: 60_000 });
    assert.equal(thirdParty.tokens.length, before, "nothing sent before the click");
    await cont.click();
    await page.waitForURL((u) => u.href.startsWith(elsewhere));
    const second = new URL(page.url()).searchParams.get("loginToken");
    const again = await client.loginRequest({ type: "m.login.token", token: second });
    assert.equal(again.user_id, "@student1:localhost");
    assert.notEqual(again.device_id, res.device_id, "a new session");
    await signedIn.logout(true);
  });
});
