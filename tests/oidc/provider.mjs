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
import http from 'node:http';
import readline from 'node:readline';
import Provider from 'oidc-provider';

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
  server.on('request', provider.callback());
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
