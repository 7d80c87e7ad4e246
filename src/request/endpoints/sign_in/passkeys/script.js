// portcullis passkeys: registration on {prefix}/passkeys, sign-in on {prefix}/sign-in, the
// second factor on {prefix}/second-factor.
// Served by the gateway itself (same origin), so the pages' CSP allows no inline script.
"use strict";
(function () {
  const root = document.getElementById("passkeys");
  const status = document.getElementById("passkey-status");
  if (!root || !window.PublicKeyCredential) {
    if (status) status.textContent = "This browser cannot use passkeys.";
    return;
  }
  const prefix = root.dataset.prefix;

  function fromB64(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
  }
  function toB64(buffer) {
    let bin = "";
    for (const byte of new Uint8Array(buffer)) bin += String.fromCharCode(byte);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function say(text) {
    status.textContent = text;
  }
  async function post(path, body) {
    const headers = { "Content-Type": "application/json" };
    if (root.dataset.csrf) headers[root.dataset.header] = root.dataset.csrf;
    const response = await fetch(prefix + "/passkeys/" + path, {
      method: "POST", headers, body: JSON.stringify(body || {}), credentials: "same-origin",
    });
    const text = await response.text();
    const json = text ? JSON.parse(text) : {};
    if (!response.ok) throw new Error(json.reason || "refused (" + response.status + ")");
    return json;
  }

  async function register() {
    say("Follow your browser's prompt…");
    const options = (await post("register-options")).publicKey;
    options.challenge = fromB64(options.challenge);
    options.user.id = fromB64(options.user.id);
    options.excludeCredentials = (options.excludeCredentials || []).map((c) => ({ ...c, id: fromB64(c.id) }));
    // A discoverable credential, so that signing in needs no username.
    options.authenticatorSelection = { ...(options.authenticatorSelection || {}), residentKey: "required", requireResidentKey: true };
    const made = await navigator.credentials.create({ publicKey: options });
    const credential = {
      id: made.id, rawId: toB64(made.rawId), type: made.type,
      response: {
        attestationObject: toB64(made.response.attestationObject),
        clientDataJSON: toB64(made.response.clientDataJSON),
      },
      extensions: {},
    };
    const label = (document.getElementById("passkey-label") || {}).value || "";
    const saved = await post("register", { label, credential });
    say("Passkey “" + saved.label + "” added.");
    location.reload();
  }

  async function remove(id) {
    await post("remove", { id });
    location.reload();
  }

  // One assertion ceremony: a challenge from `optionsPath`, the browser's answer posted to
  // `answerPath`, then on to where the gateway says.
  async function assertWith(optionsPath, answerPath) {
    say("Follow your browser's prompt…");
    const options = (await post(optionsPath)).publicKey;
    options.challenge = fromB64(options.challenge);
    options.allowCredentials = (options.allowCredentials || []).map((c) => ({ ...c, id: fromB64(c.id) }));
    const got = await navigator.credentials.get({ publicKey: options });
    const r = got.response;
    const credential = {
      id: got.id, rawId: toB64(got.rawId), type: got.type,
      response: {
        authenticatorData: toB64(r.authenticatorData),
        clientDataJSON: toB64(r.clientDataJSON),
        signature: toB64(r.signature),
        userHandle: r.userHandle ? toB64(r.userHandle) : null,
      },
      extensions: {},
    };
    const done = await post(answerPath, { credential, rd: root.dataset.rd || "" });
    location.assign(done.redirect);
  }

  function wire(id, action) {
    const button = document.getElementById(id);
    if (button) button.addEventListener("click", () => action().catch((e) => say("Passkey refused: " + e.message)));
  }
  wire("add-passkey", register);
  wire("passkey-sign-in", () => assertWith("sign-in-options", "sign-in"));
  wire("passkey-step-up", () => assertWith("step-up-options", "step-up"));
  for (const button of document.querySelectorAll("button.remove-passkey")) {
    button.addEventListener("click", () => remove(button.dataset.id).catch((e) => say("Not removed: " + e.message)));
  }
})();
