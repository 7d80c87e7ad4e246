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
// provider would send (a replay, a nonce, no event).
//
// The provider calls the gateway's back-channel logout endpoint over https; the gateway's
// self-signed certificate is made after this process starts, so the test starts it with
// NODE_TLS_REJECT_UNAUTHORIZED=0 (this test provider only).
import http from 'node:http';
import readline from 'node:readline';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };

async function signRoute(req, res) {
  let body = '';
  for await (const chunk of req) body += chunk;
  const token = await new jose.SignJWT(JSON.parse(body))
    .setProtectedHeader({ alg: 'RS256', kid: 'test-key', typ: 'logout+jwt' })
    .sign(privateKey);
  res.end(token);
}

const server = http.createServer((_req, res) => {
  res.statusCode = 503;
  res.end('not configured yet\n');
});

server.listen(0, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});

function configure(setup) {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const accounts = setup.accounts ?? {};
  const provider = new Provider(issuer, {
    clients: setup.clients,
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
  server.removeAllListeners('request');
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.method === 'POST' && req.url === '/test/sign') {
      signRoute(req, res).catch((err) => { res.statusCode = 500; res.end(String(err)); });
    } else {
      callback(req, res);
    }
  });
  console.log('ready');
}

const lines = readline.createInterface({ input: process.stdin });
lines.once('line', (line) => {
  try {
    configure(JSON.parse(line));
  } catch (err) {
    console.log(`setup failed: ${err.stack}`);
    process.exit(1);
  }
});
