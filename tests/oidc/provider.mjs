// A real OpenID provider for tests/it/oidc.rs: the `oidc-provider` package (certified by the
// OpenID Foundation), on plain http on loopback, which the gateway allows for providers only
// on a loopback address (the same rule as `[[issuers]]`).
//
// The gateway's https port is known only once it runs, and it needs this issuer's URL in its
// configuration first. So this script listens at once, prints `listening PORT`, answers 503
// until it reads one JSON line on stdin ({ clients, accounts }), then prints `ready`.
//
// Logins go through oidc-provider's own development interactions: a login form taking any
// name (the account id) and password, then a consent form. `accounts` maps an account id
// to the claims it has beyond `sub`.
//
// The provider signs with one RSA key made here; `POST /test/sign` (JSON claims in, a JWS
// out) signs what a test asks with that same key, for the logout-token attacks no honest
// provider would send (a replay, a nonce, no event); `POST /test/sign?key=other` signs
// with a second key under the same kid, which the provider never publishes.
//
// `POST /test/tamper` ({ sign, set, unset, secret }) makes the provider misbehave once: the
// next token response's ID token is rewritten (claims set or removed) and signed as `sign`
// says: "rs256" (its own key), "none" (alg none, no signature), "hs256" (HS256 keyed with
// `secret`, the client secret: algorithm confusion) or "other" (the unpublished key).
//
// A client may give `jwks_pem_file` (a PEM public or private key, as `portcullis keygen`
// writes) and `jwks_pem_kid` instead of `jwks`: its public JWK is read from it
// (private_key_jwt clients).
//
// The provider calls the gateway's back-channel logout endpoint over https; the gateway's
// self-signed certificate is made after this process starts, so the test starts it with
// NODE_TLS_REJECT_UNAUTHORIZED=0 (this test provider only).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import readline from 'node:readline';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
const other = await jose.generateKeyPair('RS256', { extractable: true });

async function readJson(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return JSON.parse(body);
}

async function signRoute(req, res) {
  const key = req.url.endsWith('?key=other') ? other.privateKey : privateKey;
  const token = await new jose.SignJWT(await readJson(req))
    .setProtectedHeader({ alg: 'RS256', kid: 'test-key', typ: 'logout+jwt' })
    .sign(key);
  res.end(token);
}

// The misbehaviour asked for by `POST /test/tamper`, applied to the next ID token only.
let tamper = null;

async function tampered(idToken, how) {
  const claims = { ...jose.decodeJwt(idToken), ...(how.set ?? {}) };
  for (const name of how.unset ?? []) delete claims[name];
  switch (how.sign) {
    case 'none':
      return new jose.UnsecuredJWT(claims).encode();
    case 'hs256':
      return new jose.SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', kid: 'test-key' })
        .sign(new TextEncoder().encode(how.secret));
    case 'other':
      return new jose.SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
        .sign(other.privateKey);
    default:
      return new jose.SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
        .sign(privateKey);
  }
}

async function withJwks(client) {
  if (!client.jwks_pem_file) return client;
  const { jwks_pem_file: file, jwks_pem_kid: kid, ...rest } = client;
  const jwk = crypto.createPublicKey(fs.readFileSync(file)).export({ format: 'jwk' });
  return { ...rest, jwks: { keys: [kid ? { ...jwk, kid } : jwk] } };
}

const server = http.createServer((_req, res) => {
  res.statusCode = 503;
  res.end('not configured yet\n');
});

server.listen(0, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});

async function configure(setup) {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const accounts = setup.accounts ?? {};
  const provider = new Provider(issuer, {
    clients: await Promise.all(setup.clients.map(withJwks)),
    jwks: { keys: [signingJwk] },
    cookies: { keys: ['portcullis test provider cookie key'] },
    pkce: { methods: ['S256'], required: () => true },
    // The claims of the requested scopes go into the ID token, which is all the gateway reads.
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      roles: ['roles'],
    },
    features: {
      devInteractions: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, ...(accounts[id] ?? {}) };
        },
      };
    },
  });
  // Why a token request was refused, for tests that assert the provider's reason.
  provider.on('grant.error', (_ctx, err) => {
    console.log(`grant.error ${err.error}: ${err.error_description} (${err.error_detail})`);
  });
  provider.use(async (ctx, next) => {
    await next();
    if (tamper && ctx.oidc?.route === 'token' && ctx.body?.id_token) {
      const how = tamper;
      tamper = null;
      ctx.body.id_token = await tampered(ctx.body.id_token, how);
    }
  });
  server.removeAllListeners('request');
  const callback = provider.callback();
  const failed = (res) => (err) => { res.statusCode = 500; res.end(String(err)); };
  server.on('request', (req, res) => {
    if (req.method === 'POST' && req.url.startsWith('/test/sign')) {
      signRoute(req, res).catch(failed(res));
    } else if (req.method === 'POST' && req.url === '/test/tamper') {
      readJson(req).then((how) => { tamper = how; res.end('ok'); }).catch(failed(res));
    } else {
      callback(req, res);
    }
  });
  console.log('ready');
}

const lines = readline.createInterface({ input: process.stdin });
lines.once('line', (line) => {
  Promise.resolve()
    .then(() => configure(JSON.parse(line)))
    .catch((err) => {
      console.log(`setup failed: ${err.stack}`);
      process.exit(1);
    });
});
