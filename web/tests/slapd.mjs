// A real OpenLDAP slapd for the browser scenarios: Debian's slapd and
// slapadd (scripts/test-deps.sh installs them), a directory of its own in
// a temporary directory, on a free loopback port. The same layout as the
// Go tests' ldaptest package: people under ou=people, a service account
// Salon binds as.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

export const base = "dc=salon,dc=test";
export const people = `ou=people,${base}`;
export const serviceDN = `cn=salon,ou=services,${base}`;
export const servicePW = "service-secret";

function binary(name) {
  for (const d of ["/usr/sbin", "/usr/bin"]) {
    if (existsSync(path.join(d, name))) return path.join(d, name);
  }
  return null;
}

export const slapdInstalled = Boolean(binary("slapd") && binary("slapadd"));

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

function accepts(port) {
  return new Promise((resolve) => {
    const c = connect(port, "127.0.0.1");
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

/**
 * Starts slapd with the given people ({ uid, cn, mail, password }) and
 * resolves with { url, config, stop }: config is the ldap section of a
 * salon.yaml that signs people in and searches them.
 */
export async function startSlapd(persons) {
  const dir = mkdtempSync(path.join(tmpdir(), "salon-web-slapd-"));
  mkdirSync(path.join(dir, "db"));
  const conf = path.join(dir, "slapd.conf");
  writeFileSync(conf, `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile ${dir}/slapd.pid
argsfile ${dir}/slapd.args
database mdb
maxsize 67108864
suffix "${base}"
rootdn "cn=admin,${base}"
rootpw admin-secret
directory ${dir}/db
index objectClass eq
index uid,cn,mail eq,sub
index entryUUID eq
`);
  let ldif = `dn: ${base}
objectClass: dcObject
objectClass: organization
dc: salon
o: Salon test

dn: ${people}
objectClass: organizationalUnit
ou: people

dn: ou=services,${base}
objectClass: organizationalUnit
ou: services

dn: ${serviceDN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: salon
userPassword: ${servicePW}

`;
  for (const p of persons) {
    ldif += `dn: uid=${p.uid},${people}
objectClass: inetOrgPerson
uid: ${p.uid}
cn: ${p.cn}
sn: ${p.cn.split(" ").pop()}
mail: ${p.mail}
userPassword: ${p.password}

`;
  }
  writeFileSync(path.join(dir, "fixture.ldif"), ldif);
  execFileSync(binary("slapadd"), ["-q", "-f", conf, "-l", path.join(dir, "fixture.ldif")], { stdio: "pipe" });
  const port = await freeTCPPort();
  const url = `ldap://127.0.0.1:${port}`;
  const child = spawn(binary("slapd"), ["-d", "0", "-h", `${url}/`, "-f", conf], { stdio: "ignore" });
  const end = Date.now() + 20_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > end) {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw new Error("slapd did not start");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    config: `ldap:
  url: ${url}
  bind_dn: ${serviceDN}
  bind_password: ${servicePW}
  base_dn: ${people}
  directory:
    enabled: true
`,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGINT");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
