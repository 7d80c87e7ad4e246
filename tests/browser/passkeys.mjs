// Drives Debian's chromium through passkeys with a virtual authenticator (DevTools
// protocol): sign in with the password, register a passkey, sign out, sign in with the
// passkey alone, then use it as the second factor after a password. Then attacks on the
// passkey sign-in, each refused with a 401: a replayed assertion, a forged signature,
// assertions signed with the real key for another origin and another RP id, and a counter
// that went backwards. Called by tests/it/browser.rs with
// GATEWAY=https://127.0.0.1:PORT; WebAuthn needs a host name, so the pages are opened on
// https://localhost:PORT (RP id "localhost"). Prints one line per step.
import { createHash, createPrivateKey, sign } from "node:crypto";
import { chromium } from "playwright-core";

const gateway = process.env.GATEWAY.replace("127.0.0.1", "localhost");
const password = process.env.PASSWORD;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const args = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

function check(condition, step, detail) {
  if (!condition) {
    throw new Error(`${step}: ${detail}`);
  }
  console.log(`ok: ${step}`);
}

const b64url = (buf) => Buffer.from(buf).toString("base64url");
const sha256 = (data) => createHash("sha256").update(data).digest();

async function body(page) {
  return await page.textContent("body");
}

// Runs one passkey sign-in in the page: options, then `answer(options)` builds the
// credential to post (the real authenticator's, or one made here). Returns status and body.
async function postAssertion(page, credential) {
  return await page.evaluate(async (credential) => {
    const r = await fetch("/auth/passkeys/sign-in", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ credential, rd: "" }),
    });
    return { status: r.status, text: await r.text() };
  }, credential);
}

async function options(page) {
  return await page.evaluate(async () => {
    const r = await fetch("/auth/passkeys/sign-in-options", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    return (await r.json()).publicKey;
  });
}

// A real assertion from the virtual authenticator for the current challenge.
async function realAssertion(page) {
  return await page.evaluate(async () => {
    const b64 = (t) => Uint8Array.from(atob(t.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((t.length + 3) % 4)), (c) => c.charCodeAt(0)).buffer;
    const enc = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    const r = await fetch("/auth/passkeys/sign-in-options", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    const options = (await r.json()).publicKey;
    options.challenge = b64(options.challenge);
    const got = await navigator.credentials.get({ publicKey: options });
    const res = got.response;
    return {
      id: got.id, rawId: enc(got.rawId), type: got.type, extensions: {},
      response: {
        authenticatorData: enc(res.authenticatorData), clientDataJSON: enc(res.clientDataJSON),
        signature: enc(res.signature), userHandle: enc(res.userHandle),
      },
    };
  });
}

// An assertion made here with the credential's real private key, for any origin and RP id.
function craftedAssertion(cred, challenge, { origin, rpId, counter }) {
  const clientData = Buffer.from(JSON.stringify({ type: "webauthn.get", challenge, origin, crossOrigin: false }));
  const count = Buffer.alloc(4);
  count.writeUInt32BE(counter);
  const authData = Buffer.concat([sha256(rpId), Buffer.from([0x05]), count]);
  const key = createPrivateKey({ key: Buffer.from(cred.privateKey, "base64"), format: "der", type: "pkcs8" });
  const signature = sign("sha256", Buffer.concat([authData, sha256(clientData)]), key);
  return {
    id: b64url(Buffer.from(cred.credentialId, "base64")), rawId: b64url(Buffer.from(cred.credentialId, "base64")),
    type: "public-key", extensions: {},
    response: {
      authenticatorData: b64url(authData), clientDataJSON: b64url(clientData),
      signature: b64url(signature), userHandle: b64url(Buffer.from(cred.userHandle, "base64")),
    },
  };
}

const browser = await chromium.launch({ executablePath, args, headless: true });
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2", transport: "internal", hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  const wanted = `${gateway}/api/reports?year=2026`;

  await page.goto(wanted);
  check(page.url().startsWith(`${gateway}/auth/sign-in?rd=`), "protected page sends to sign-in", page.url());
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL(wanted);
  check(page.url() === wanted, "signed in with the password", page.url());
  const hardware = `${gateway}/hardware/panel`;
  await page.goto(hardware);
  check(page.url().startsWith(`${gateway}/auth/`), "a password session may not open an amr_any = [hwk] route", page.url());

  await page.goto(`${gateway}/auth/passkeys`);
  check((await body(page)).includes("0 passkey(s)"), "passkeys page lists none yet", await body(page));
  await page.getByLabel("Name for a new passkey").fill("laptop");
  await page.getByRole("button", { name: "Add a passkey" }).click();
  await page.waitForFunction(() => document.body.textContent.includes("1 passkey(s)"), null, { timeout: 10000 })
    .catch(async () => { throw new Error("registration: " + (await body(page))); });
  check((await body(page)).includes("laptop"), "a passkey is registered and listed", await body(page));
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  check(credentials.length === 1 && credentials[0].isResidentCredential, "the authenticator holds one discoverable credential", JSON.stringify(credentials.map((c) => c.isResidentCredential)));
  const cred = credentials[0];

  await page.goto(`${gateway}/auth/sign-out`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForLoadState();
  check((await body(page)).includes("You have been signed out."), "signed out", await body(page));

  await page.goto(wanted);
  check(page.url().startsWith(`${gateway}/auth/sign-in?rd=`), "signed out: sign-in again", page.url());
  await page.getByRole("button", { name: "Sign in with a passkey" }).click();
  await page.waitForURL(wanted, { timeout: 10000 }).catch(async () => { throw new Error("passkey sign-in: " + (await body(page))); });
  const headers = JSON.parse(await body(page)).headers;
  check(headers["x-auth-user"] === "alice", "passkey alone signs in: upstream sees x-auth-user alice", JSON.stringify(headers));
  const access = (await context.cookies()).find((c) => c.name.includes("access"));
  const claims = JSON.parse(Buffer.from(access.value.split(".")[1], "base64url"));
  const age = Math.abs(Date.now() / 1000 - claims.auth_time);
  check(JSON.stringify(claims.amr) === '["hwk","mfa"]' && age < 60, "token says amr hwk+mfa and a fresh auth_time", JSON.stringify(claims));
  await page.goto(`${gateway}/auth/sessions`);
  check((await body(page)).includes("with passkey"), "the sessions page says the session signed in with a passkey", await body(page));
  await page.goto(hardware);
  const onHardware = page.url() === hardware ? JSON.parse(await body(page)).headers : {};
  check(onHardware["x-auth-user"] === "alice", "the passkey session opens an mfa + amr_any = [hwk] route", page.url());

  // The passkey as the second factor: a password session sent to the second-factor page by
  // the hwk route proves the passkey there and comes back with amr pwd+hwk+mfa.
  await page.goto(`${gateway}/auth/sign-out`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForLoadState();
  await page.goto(wanted);
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL(wanted);
  await page.goto(hardware);
  check(page.url().startsWith(`${gateway}/auth/second-factor?rd=`) && (await body(page)).includes("Use your passkey"),
    "a password session on the hwk route is offered its passkey on the second-factor page", page.url() + " " + (await body(page)));
  const stepUpPost = async (path, credential, withCsrf) => page.evaluate(async ({ path, credential, withCsrf }) => {
    const data = document.getElementById("passkeys").dataset;
    const headers = { "Content-Type": "application/json" };
    if (withCsrf) headers[data.header] = data.csrf;
    const r = await fetch("/auth/passkeys/" + path, { method: "POST", headers, body: JSON.stringify(credential ? { credential, rd: "" } : {}) });
    return { status: r.status, text: await r.text() };
  }, { path, credential, withCsrf });
  const noCsrf = await stepUpPost("step-up-options", null, false);
  check(noCsrf.status === 403 && noCsrf.text.includes("CSRF"), "step-up options without the CSRF header are refused (403)", JSON.stringify(noCsrf));
  // An assertion answering a sign-in challenge cannot finish a step-up: the ceremony kinds differ.
  const signInAnswer = await realAssertion(page);
  const crossed = await stepUpPost("step-up", signInAnswer, true);
  check(crossed.status === 401 && crossed.text.includes("no passkey step-up in progress"), "a sign-in assertion posted as a step-up is refused (401)", JSON.stringify(crossed));
  await page.getByRole("button", { name: "Use your passkey" }).click();
  await page.waitForURL(hardware, { timeout: 10000 }).catch(async () => { throw new Error("passkey step-up: " + page.url() + " " + (await body(page))); });
  const stepped = JSON.parse(await body(page)).headers;
  const steppedAccess = (await context.cookies()).find((c) => c.name.includes("access"));
  const steppedClaims = JSON.parse(Buffer.from(steppedAccess.value.split(".")[1], "base64url"));
  check(stepped["x-auth-user"] === "alice" && JSON.stringify(steppedClaims.amr) === '["pwd","hwk","mfa"]',
    "the passkey as second factor opens the hwk route with amr pwd+hwk+mfa", JSON.stringify(steppedClaims));

  // Attacks, each from the gateway's own origin so that only the passkey check can refuse.
  const first = await realAssertion(page);
  check(JSON.stringify(await postAssertion(page, first)).includes("redirect"), "a fresh real assertion is accepted", "");
  await options(page);
  const replay = await postAssertion(page, first);
  check(replay.status === 401 && replay.text.includes("challenge"), "a replayed assertion is refused (401)", JSON.stringify(replay));

  const forged = await realAssertion(page);
  const sig = Buffer.from(forged.response.signature, "base64url");
  sig[sig.length - 1] ^= 0x01;
  forged.response.signature = b64url(sig);
  const refusedSig = await postAssertion(page, forged);
  check(refusedSig.status === 401 && refusedSig.text.includes("signature"), "a forged signature is refused (401)", JSON.stringify(refusedSig));

  let challenge = (await options(page)).challenge;
  const badOrigin = await postAssertion(page, craftedAssertion(cred, challenge, { origin: "https://evil.example", rpId: "localhost", counter: 500 }));
  check(badOrigin.status === 401 && badOrigin.text.includes("wrong origin"), "an assertion made for another origin is refused (401)", JSON.stringify(badOrigin));

  challenge = (await options(page)).challenge;
  const badRp = await postAssertion(page, craftedAssertion(cred, challenge, { origin: gateway, rpId: "evil.example", counter: 500 }));
  check(badRp.status === 401 && badRp.text.includes("relying-party id"), "an assertion for another RP id is refused (401)", JSON.stringify(badRp));

  // The same crafting with the right origin and RP id passes: the refusals above are the
  // origin's and the RP id's, not the crafting's. This "clone" moves the counter to 500 ...
  challenge = (await options(page)).challenge;
  const clone = await postAssertion(page, craftedAssertion(cred, challenge, { origin: gateway, rpId: "localhost", counter: 500 }));
  check(clone.status === 200, "a correctly made assertion with the real key is accepted", JSON.stringify(clone));
  // ... so the real authenticator's next, lower counter is a regression.
  const behind = await postAssertion(page, await realAssertion(page));
  check(behind.status === 401 && behind.text.includes("counter"), "a counter that went backwards is refused (401)", JSON.stringify(behind));

  const stale = await postAssertion(page, craftedAssertion(cred, challenge, { origin: gateway, rpId: "localhost", counter: 900 }));
  check(stale.status === 401, "an assertion without a live challenge is refused (401)", JSON.stringify(stale));
} finally {
  await browser.close();
}
