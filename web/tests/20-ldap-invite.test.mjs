// Scenario 20: inviting someone found in the LDAP directory. A lecturer
// (a local account) opens a room's invite dialog, searches for a student
// by name, finds her although she has never signed in to Salon (she is
// only in the university's directory), and invites her; the student then
// signs in with her directory password for the first time and finds the
// invitation waiting.
//
// The directory is a real OpenLDAP slapd (Debian's package, started here on
// loopback; scripts/test-deps.sh installs it). Without it the scenario
// skips, and under CI=true fails.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { api, launchBrowser, loginUI, newPerson, registerApi, scenario, startStack } from "./harness.mjs";
import { slapdInstalled, startSlapd } from "./slapd.mjs";

if (!slapdInstalled && process.env.CI === "true") {
  throw new Error("slapd is not installed and CI=true: run scripts/test-deps.sh");
}

const student = { uid: "dscully", cn: "Dana Scully", mail: "dana.scully@uni.example", password: "trust-no-one" };
let dir;
let stack;
let browser;

before(async () => {
  if (!slapdInstalled) return;
  dir = await startSlapd([student, { uid: "fmulder", cn: "Fox Mulder", mail: "fox.mulder@uni.example", password: "i-want-to-believe" }]);
  stack = await startStack({ config: dir.config });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
  await dir?.stop();
});

test("scenario 20: invite someone found in the LDAP directory", { timeout: 180_000, skip: !slapdInstalled && "slapd is not installed" }, async () => {
  const password = "lecturer password";
  const prof = await registerApi(stack.api, "lecturer", password);
  const { room_id: roomId } = await api(stack.api, prof.access_token, "POST", "/_matrix/client/v3/createRoom", {
    name: "Seminar",
    preset: "private_chat",
  });
  const lecturer = await newPerson(browser, "lecturer");
  const dana = await newPerson(browser, "dana");
  const L = lecturer.page;
  const D = dana.page;
  const danaID = "@dscully:localhost";

  await scenario("scenario-20-ldap-invite", [lecturer, dana], async () => {
    await loginUI(L, stack.url, prof.user_id, password);
    await L.locator(".room-list .room-button", { hasText: "Seminar" }).click();
    await L.locator("#room-title", { hasText: "Seminar" }).waitFor();

    // The invite dialog searches the directory by name: Dana has no
    // account yet, and she is found with the Matrix ID she will have.
    await L.getByRole("button", { name: "Room options" }).click();
    await L.getByRole("menuitem", { name: "Invite", exact: true }).click();
    const invite = L.getByRole("dialog", { name: "Invite to Seminar" });
    await invite.getByLabel("Search people by name or user ID").fill("Scully");
    const found = invite.locator("li.person", { hasText: "Dana Scully" });
    await found.waitFor();
    assert.equal(await found.locator("small").innerText(), danaID);
    // Only she matches; her mail address is searched but never shown.
    assert.equal(await invite.locator("li.person").count(), 1);
    assert.ok(!(await invite.innerText()).includes("uni.example"), "no mail address in the results");
    await found.getByRole("button", { name: `Invite ${danaID}` }).click();
    await invite.getByText("Invited").waitFor();
    await L.keyboard.press("Escape");
    const state = await api(stack.api, prof.access_token, "GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.member/${encodeURIComponent(danaID)}`);
    assert.equal(state.membership, "invite");

    // A search by mail finds Fox, who is not in any room either.
    await L.getByRole("button", { name: "Room options" }).click();
    await L.getByRole("menuitem", { name: "Invite", exact: true }).click();
    await invite.getByLabel("Search people by name or user ID").fill("fox.mulder@");
    await invite.locator("li.person", { hasText: "Fox Mulder" }).waitFor();
    await L.keyboard.press("Escape");

    // Dana signs in for the first time with her directory password: the
    // account is made then, and the invitation is waiting.
    await loginUI(D, stack.url, student.uid, student.password);
    const invited = D.locator(".room-item", { has: D.locator(".room-button", { hasText: "Seminar" }) });
    await invited.getByRole("button", { name: "Accept" }).click();
    await D.locator("#room-title", { hasText: "Seminar" }).waitFor();
    await L.locator("li.event.state", { hasText: "joined" }).last().waitFor();
    const joined = await api(stack.api, prof.access_token, "GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`);
    assert.ok(danaID in joined.joined, "Dana joined");
  });
});
