#!/usr/bin/env node
// A real OpenID Connect provider (panva/oidc-provider 9, OpenID certified) for the IOC
// Console's tests, on loopback. Not a mock: every endpoint is oidc-provider's own; this file
// only configures it, serves the login form and keeps its state. See README.md.
//
//   node provider.mjs --port P --issuer http://127.0.0.1:P --state DIR
//   node provider.mjs --add-key --state DIR      (puts a new RS256 key first in DIR/jwks.json)

import { Provider, errors } from 'oidc-provider';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

// oidc-provider prints its notices with console.info: keep stdout for the one ready line.
console.info = console.error;
console.log = console.error;

const USAGE = `usage: node provider.mjs --port P [--issuer URL] --state DIR [options]
       node provider.mjs --add-key --state DIR

  --port P            port to listen on (0: any free port; the ready line tells which)
  --host H            address to listen on (default 127.0.0.1)
  --issuer URL        issuer (default http://H:P, no trailing slash)
  --state DIR         jwks.json, clients.json, accounts.json (made if missing), store.json
  --resource URI      the API's resource indicator (default urn:ioc:api)
  --audience AUD      "aud" of JWT access tokens (default: the resource indicator)
  --access-ttl S      access token lifetime, seconds (default 300)
  --refresh-ttl S     refresh token lifetime, seconds (default 86400)
  --id-token-ttl S    ID token lifetime, seconds (default 3600)
  --memory-only       keep sessions and tokens in memory only (no DIR/store.json)
  --log-requests      one line per HTTP request on stderr
  --add-key           put a new RS256 signing key first in DIR/jwks.json, print its kid, exit

Signals: SIGHUP reloads jwks.json and clients.json (sessions and tokens are kept);
SIGTERM/SIGINT stop cleanly (exit 0).`;

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      issuer: { type: 'string' },
      state: { type: 'string' },
      resource: { type: 'string', default: 'urn:ioc:api' },
      audience: { type: 'string' },
      'access-ttl': { type: 'string', default: '300' },
      'refresh-ttl': { type: 'string', default: '86400' },
      'id-token-ttl': { type: 'string', default: '3600' },
      'memory-only': { type: 'boolean', default: false },
      'log-requests': { type: 'boolean', default: false },
      'add-key': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }));
} catch (err) {
  console.error(`${err.message}\n\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(0);
}
if (!args.state || (!args['add-key'] && args.port === undefined)) {
  console.error(USAGE);
  process.exit(2);
}

function seconds(name) {
  const n = Number(args[name]);
  if (!Number.isSafeInteger(n) || n <= 0) {
    console.error(`--${name} must be a positive whole number of seconds`);
    process.exit(2);
  }
  return n;
}

const STATE = path.resolve(args.state);
const FILES = {
  jwks: path.join(STATE, 'jwks.json'),
  clients: path.join(STATE, 'clients.json'),
  accounts: path.join(STATE, 'accounts.json'),
  store: path.join(STATE, 'store.json'),
  cookieKeys: path.join(STATE, 'cookie-keys.json'),
};
const RESOURCE = args.resource;
const AUDIENCE = args.audience ?? RESOURCE;
// Scopes an access token for the API can carry (those requested and granted).
const RESOURCE_SCOPES = 'openid profile offline_access ioc:api';
const ACCESS_TTL = seconds('access-ttl');
const REFRESH_TTL = seconds('refresh-ttl');
const ID_TOKEN_TTL = seconds('id-token-ttl');

// ---------------------------------------------------------------------------------------
// Files

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

// Tests may be rewriting a file at the moment it is read: a half-written file is read again.
function readJsonRetry(file) {
  for (let i = 0; ; i += 1) {
    try {
      return readJson(file);
    } catch (err) {
      if (i >= 5 || !(err instanceof SyntaxError || err.code === 'ENOENT')) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

function writeJsonAtomic(file, value, mode = 0o644) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode });
  fs.renameSync(tmp, file);
}

function thumbprint(jwk) {
  // RFC 7638, for RSA keys.
  const json = JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n });
  return crypto.createHash('sha256').update(json).digest('base64url');
}

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { kid: thumbprint(jwk), alg: 'RS256', use: 'sig', ...jwk };
}

// Keys without alg/use would lose to keys with them in oidc-provider's key selection
// whatever their order: give RSA keys RS256/sig (and a thumbprint kid) so the first key
// signs.
function normalizeKeys(keys) {
  return keys.map((k) => {
    if (k.kty !== 'RSA') return k;
    return { ...k, kid: k.kid ?? thumbprint(k), alg: k.alg ?? 'RS256', use: k.use ?? 'sig' };
  });
}

const DEFAULT_CLIENTS = [
  {
    client_id: 'ioc-console',
    client_name: 'IOC Console',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: [
      'http://127.0.0.1/api/auth/oidc/callback',
      'http://localhost/api/auth/oidc/callback',
    ],
    post_logout_redirect_uris: ['http://127.0.0.1/', 'http://localhost/'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    scope: 'openid profile offline_access',
  },
  {
    client_id: 'ioc-console-userinfo',
    client_name: 'IOC Console (opaque access tokens unless resource= is sent)',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: [
      'http://127.0.0.1/api/auth/oidc/callback',
      'http://localhost/api/auth/oidc/callback',
    ],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    scope: 'openid profile offline_access',
    access_token_default: 'opaque',
  },
  {
    client_id: 'ioc-integration',
    client_name: 'Province integration bus',
    client_secret: 'ioc-integration-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    ioc_claims: {
      preferred_username: 'svc-integration',
      name: 'Hệ thống tích hợp tỉnh',
      ioc_role: 'operator',
      ioc_units: ['16681'],
    },
  },
  {
    client_id: 'ioc-integration-short',
    client_name: 'Province integration bus (3 s tokens)',
    client_secret: 'ioc-integration-short-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    access_token_ttl: 3,
    ioc_claims: {
      preferred_username: 'svc-short',
      name: 'Dịch vụ thử hết hạn',
      ioc_role: 'operator',
      ioc_units: ['16681'],
    },
  },
];

const DEFAULT_ACCOUNTS = {
  lan: {
    password: 'lan-password',
    name: 'Nguyễn Thị Lan',
    ioc_role: 'operator',
    ioc_units: ['16681'],
  },
  minh: {
    password: 'minh-password',
    name: 'Trần Văn Minh',
    ioc_role: 'supervisor',
    ioc_units: [],
  },
};

// The keys of a clients.json entry that are ours, not client metadata.
const CLIENT_EXTENSIONS = ['ioc_claims', 'access_token_ttl', 'access_token_default'];
// The keys of an accounts.json entry that are not claims.
const ACCOUNT_NON_CLAIMS = new Set(['password', 'disabled', 'sub']);
const STANDARD_CLAIMS = ['name', 'preferred_username', 'ioc_role', 'ioc_units'];

function ensureStateFiles() {
  fs.mkdirSync(STATE, { recursive: true });
  if (!fs.existsSync(FILES.jwks)) {
    writeJsonAtomic(FILES.jwks, { keys: [newSigningKey()] }, 0o600);
  }
  if (!fs.existsSync(FILES.clients)) writeJsonAtomic(FILES.clients, DEFAULT_CLIENTS);
  if (!fs.existsSync(FILES.accounts)) writeJsonAtomic(FILES.accounts, DEFAULT_ACCOUNTS);
  if (!fs.existsSync(FILES.cookieKeys)) {
    writeJsonAtomic(FILES.cookieKeys, { keys: [crypto.randomBytes(32).toString('hex')] }, 0o600);
  }
}

function loadAccounts() {
  const accounts = readJsonRetry(FILES.accounts);
  if (accounts === null || typeof accounts !== 'object' || Array.isArray(accounts)) {
    throw new Error(`${FILES.accounts}: expected an object of username -> account`);
  }
  return accounts;
}

function findAccountEntry(username) {
  const accounts = loadAccounts();
  if (typeof username !== 'string' || !Object.hasOwn(accounts, username)) return undefined;
  const acct = accounts[username];
  if (!acct || typeof acct !== 'object' || acct.disabled) return undefined;
  return acct;
}

function accountClaims(username, acct) {
  const claims = { preferred_username: username };
  for (const [k, v] of Object.entries(acct)) {
    if (!ACCOUNT_NON_CLAIMS.has(k)) claims[k] = v;
  }
  return claims;
}

// ---------------------------------------------------------------------------------------
// Storage: one process-wide store shared by every Provider instance (so SIGHUP keeps
// sessions, grants and refresh tokens), written to DIR/store.json (so a restart does too).

class Store {
  #map = new Map(); // key -> { v, exp (ms epoch, 0 = never) }

  #file;

  #pending = false;

  constructor(file) {
    this.#file = file;
    if (file && fs.existsSync(file)) {
      try {
        for (const [k, e] of readJson(file)) this.#map.set(k, e);
      } catch (err) {
        console.error(`[oidc] ignoring unreadable ${file}: ${err.message}`);
      }
    }
  }

  get(key) {
    const e = this.#map.get(key);
    if (!e) return undefined;
    if (e.exp && e.exp <= Date.now()) {
      this.#map.delete(key);
      return undefined;
    }
    return structuredClone(e.v);
  }

  set(key, value, expiresIn) {
    const exp = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : 0;
    this.#map.set(key, { v: structuredClone(value), exp });
    this.#changed();
  }

  update(key, fn) {
    const e = this.#map.get(key);
    if (e) {
      fn(e.v);
      this.#changed();
    }
  }

  delete(key) {
    if (this.#map.delete(key)) this.#changed();
  }

  #changed() {
    if (!this.#file || this.#pending) return;
    this.#pending = true;
    setImmediate(() => this.flush());
  }

  flush() {
    this.#pending = false;
    if (!this.#file) return;
    const now = Date.now();
    const live = [...this.#map].filter(([, e]) => !e.exp || e.exp > now);
    try {
      writeJsonAtomic(this.#file, live, 0o600);
    } catch (err) {
      console.error(`[oidc] cannot write ${this.#file}: ${err.message}`);
    }
  }
}

let store;
const GRANTABLE = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode',
]);

// oidc-provider's adapter interface (one instance per model name).
class StoreAdapter {
  constructor(name) {
    this.name = name;
  }

  key(id) {
    return `${this.name}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    store.set(key, payload, expiresIn);
    if (this.name === 'Session' && payload.uid) store.set(`sessionUid:${payload.uid}`, id, expiresIn);
    if (payload.userCode) store.set(`userCode:${payload.userCode}`, id, expiresIn);
    if (GRANTABLE.has(this.name) && payload.grantId) {
      const gkey = `grant:${payload.grantId}`;
      const members = store.get(gkey) ?? [];
      if (!members.includes(key)) store.set(gkey, [...members, key], REFRESH_TTL * 2);
    }
  }

  async find(id) {
    return store.get(this.key(id));
  }

  async findByUid(uid) {
    const id = store.get(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = store.get(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    store.update(this.key(id), (v) => { v.consumed = Math.floor(Date.now() / 1000); });
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const gkey = `grant:${grantId}`;
    for (const key of store.get(gkey) ?? []) store.delete(key);
    store.delete(gkey);
  }
}

// ---------------------------------------------------------------------------------------
// Pages

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="vi">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>body{font-family:sans-serif;max-width:22rem;margin:3rem auto}label,input,button{display:block;width:100%;margin:.3rem 0}#error{color:#b00}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

function loginPage(uid, params, { error, username } = {}) {
  return page('Sign in - IOC test provider', `<h1>Sign in</h1>
<p>to <span id="client">${esc(params.client_id)}</span></p>
${error ? `<p id="error" role="alert">${esc(error)}</p>\n` : ''}<form id="login" method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label for="username">Username</label>
<input id="username" name="username" type="text" value="${esc(username ?? params.login_hint ?? '')}" autofocus required>
<label for="password">Password</label>
<input id="password" name="password" type="password" required>
<button id="submit" type="submit">Sign in</button>
</form>
<p><a id="abort" href="/interaction/${esc(uid)}/abort">Cancel</a></p>`);
}

function sendHtml(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 65536) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// ---------------------------------------------------------------------------------------
// The provider

function loadClients() {
  const raw = readJsonRetry(FILES.clients);
  const list = Array.isArray(raw) ? raw : raw.clients;
  if (!Array.isArray(list)) throw new Error(`${FILES.clients}: expected an array of clients`);
  const ext = new Map();
  const clients = list.map((c) => {
    const meta = { ...c };
    const e = {};
    for (const k of CLIENT_EXTENSIONS) {
      if (k in meta) {
        e[k] = meta[k];
        delete meta[k];
      }
    }
    if (e.access_token_ttl !== undefined
      && (!Number.isSafeInteger(e.access_token_ttl) || e.access_token_ttl <= 0)) {
      throw new Error(`client ${meta.client_id}: access_token_ttl must be a positive integer`);
    }
    if (e.access_token_default !== undefined && !['jwt', 'opaque'].includes(e.access_token_default)) {
      throw new Error(`client ${meta.client_id}: access_token_default must be "jwt" or "opaque"`);
    }
    ext.set(meta.client_id, e);
    return meta;
  });
  return { clients, ext };
}

const ERROR_EVENTS = [
  'authorization.error', 'backchannel.error', 'discovery.error', 'end_session.error',
  'grant.error', 'introspection.error', 'jwks.error', 'pushed_authorization_request.error',
  'registration_create.error', 'registration_delete.error', 'registration_read.error',
  'registration_update.error', 'revocation.error', 'userinfo.error',
];

function buildProvider(issuer, port) {
  const { keys } = readJsonRetry(FILES.jwks);
  if (!Array.isArray(keys) || keys.length === 0) throw new Error(`${FILES.jwks}: no keys`);
  const jwks = { keys: normalizeKeys(keys) };
  const { clients, ext } = loadClients();
  const cookieKeys = readJson(FILES.cookieKeys).keys;

  // Claims released for the profile scope: ours, and any other field found in accounts.json
  // (a new claim name needs a SIGHUP; new values do not).
  const extraClaims = new Set();
  for (const acct of Object.values(loadAccounts())) {
    if (acct && typeof acct === 'object') {
      for (const k of Object.keys(acct)) if (!ACCOUNT_NON_CLAIMS.has(k)) extraClaims.add(k);
    }
  }
  for (const k of STANDARD_CLAIMS) extraClaims.delete(k);
  extraClaims.delete('sub');

  const clientExt = (client) => (client ? ext.get(client.clientId) ?? {} : {});
  const accessTtl = (ctx, token, client) => clientExt(client).access_token_ttl ?? ACCESS_TTL;

  const provider = new Provider(issuer, {
    adapter: StoreAdapter,
    clients,
    jwks,
    // Cookies do not tell ports apart: names with the port keep two providers (or a provider
    // and the console) on 127.0.0.1 from reading each other's.
    cookies: {
      keys: cookieKeys,
      names: {
        session: `op_session_${port}`,
        interaction: `op_interaction_${port}`,
        resume: `op_interaction_resume_${port}`,
      },
    },
    claims: {
      openid: ['sub'],
      profile: [...STANDARD_CLAIMS, ...extraClaims],
    },
    // ID tokens carry the profile claims even when the access token is for the userinfo
    // endpoint (oidc-provider's default keeps those for userinfo only).
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false }, // accepts any password: our own form instead
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.body = page('Sign out - IOC test provider', `<h1>Sign out?</h1>
${form}
<button id="logout" type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<button id="stay" type="submit" form="op.logoutForm">No, stay signed in</button>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.body = page('Signed out - IOC test provider', '<h1 id="signed-out">Signed out</h1>');
        },
      },
      resourceIndicators: {
        enabled: true,
        // Requests that name no resource (the console sends none) get the API.
        async defaultResource(ctx, client, oneOf) {
          if (oneOf) return oneOf.includes(RESOURCE) ? RESOURCE : oneOf;
          return RESOURCE;
        },
        async getResourceServerInfo(ctx, resourceIndicator) {
          if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: RESOURCE_SCOPES,
            audience: AUDIENCE,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
        // Token requests without resource= get a JWT for the API, unless the client is
        // marked access_token_default: "opaque" (then: an opaque token for the userinfo
        // endpoint, and a JWT only with resource=<the API>).
        async useGrantedResource(ctx) {
          return (clientExt(ctx.oidc.client).access_token_default ?? 'jwt') === 'jwt';
        },
      },
    },
    async findAccount(ctx, sub) {
      const acct = findAccountEntry(sub);
      if (!acct) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { ...accountClaims(sub, acct), sub };
        },
      };
    },
    // Claims in access tokens (top level of JWT access tokens): the account's, read now, or
    // for client_credentials the client's ioc_claims.
    async extraTokenClaims(ctx, token) {
      if (token.accountId) {
        const acct = findAccountEntry(token.accountId);
        return acct ? accountClaims(token.accountId, acct) : undefined;
      }
      const claims = ext.get(token.clientId)?.ioc_claims;
      return claims ? structuredClone(claims) : undefined;
    },
    // oidc-provider drops offline_access from requests without prompt=consent (OIDC Core
    // 11). Clients allowed the refresh_token grant get one anyway; without offline_access it
    // ends with the provider session (expiresWithSession), with it it does not.
    async issueRefreshToken(ctx, client, code) {
      return client.grantTypeAllowed('refresh_token')
        && (code.scopes.has('offline_access') || code.scopes.has('openid'));
    },
    interactions: {
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    ttl: {
      AccessToken: accessTtl,
      ClientCredentials: accessTtl,
      AuthorizationCode: 60,
      IdToken: ID_TOKEN_TTL,
      RefreshToken: REFRESH_TTL,
      Grant: Math.max(REFRESH_TTL, 14 * 24 * 3600),
      Interaction: 3600,
      Session: 14 * 24 * 3600,
    },
    clientBasedCORS: () => false,
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error - IOC test provider', `<h1>Error</h1>
<p id="error">${esc(out.error)}</p>
<p id="error_description">${esc(out.error_description)}</p>`);
    },
  });

  provider.on('server_error', (ctx, err) => {
    console.error(`[oidc] server_error ${ctx?.method} ${ctx?.path}: ${err?.stack ?? err}`);
  });
  for (const event of ERROR_EVENTS) {
    provider.on(event, (ctx, err) => {
      const detail = err.error_detail ? ` (${err.error_detail})` : '';
      console.error(`[oidc] ${event} ${err.error ?? err.name}: ${err.error_description ?? err.message}${detail}`);
    });
  }

  return { provider, callback: provider.callback(), kids: jwks.keys.map((k) => k.kid) };
}

// ---------------------------------------------------------------------------------------
// Interactions: the login form, automatic consent

async function autoConsent(provider, req, res, interaction) {
  const { prompt: { details }, params, session, grantId } = interaction;
  let grant = grantId ? await provider.Grant.find(grantId) : undefined;
  grant ??= new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const savedId = await grant.save();
  const consent = grantId === savedId ? {} : { grantId: savedId };
  await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

async function interactionRoute(provider, req, res, uid, action) {
  let interaction;
  try {
    interaction = await provider.interactionDetails(req, res);
  } catch (err) {
    sendHtml(res, 400, page('Error - IOC test provider', `<h1>Error</h1>
<p id="error">${esc(err.error ?? 'invalid_request')}</p>
<p id="error_description">${esc(err.error_description ?? err.message)}</p>`));
    return;
  }
  if (interaction.uid !== uid) {
    sendHtml(res, 400, page('Error', '<p id="error">interaction mismatch</p>'));
    return;
  }
  const { prompt, params } = interaction;

  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }

  if (prompt.name === 'consent') {
    // First-party clients: consent is given without asking.
    await autoConsent(provider, req, res, interaction);
    return;
  }

  if (prompt.name !== 'login') {
    sendHtml(res, 400, page('Error', `<p id="error">unexpected prompt ${esc(prompt.name)}</p>`));
    return;
  }

  if (action === undefined && req.method === 'GET') {
    sendHtml(res, 200, loginPage(uid, params));
    return;
  }

  if (action === 'login' && req.method === 'POST') {
    const form = await readForm(req);
    const username = form.get('username') ?? '';
    const password = form.get('password') ?? '';
    const acct = findAccountEntry(username);
    const ok = acct && typeof acct.password === 'string'
      && crypto.timingSafeEqual(
        crypto.createHash('sha256').update(password).digest(),
        crypto.createHash('sha256').update(acct.password).digest(),
      );
    if (!ok) {
      sendHtml(res, 401, loginPage(uid, params, { error: 'Wrong username or password', username }));
      return;
    }
    await provider.interactionFinished(req, res, {
      login: { accountId: username, amr: ['pwd'], remember: true },
    }, { mergeWithLastSubmission: false });
    return;
  }

  res.statusCode = 405;
  res.end();
}

// ---------------------------------------------------------------------------------------
// Main

if (args['add-key']) {
  fs.mkdirSync(STATE, { recursive: true });
  const current = fs.existsSync(FILES.jwks) ? readJson(FILES.jwks).keys ?? [] : [];
  const key = newSigningKey();
  writeJsonAtomic(FILES.jwks, { keys: [key, ...current] }, 0o600);
  process.stdout.write(`${key.kid}\n`);
  process.exit(0);
}

ensureStateFiles();
store = new Store(args['memory-only'] ? undefined : FILES.store);

let current; // { provider, callback, kids }
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?$/;

const server = http.createServer((req, res) => {
  if (args['log-requests']) {
    res.on('finish', () => console.error(`[oidc] ${req.method} ${req.url} -> ${res.statusCode}`));
  }
  if (!current) {
    res.statusCode = 503;
    res.end();
    return;
  }
  const { provider, callback } = current;
  const { pathname } = new URL(req.url, 'http://localhost');
  const m = INTERACTION.exec(pathname);
  if (!m) {
    callback(req, res);
    return;
  }
  interactionRoute(provider, req, res, m[1], m[2]).catch((err) => {
    console.error(`[oidc] interaction error: ${err.stack ?? err}`);
    if (!res.headersSent) sendHtml(res, 500, page('Error', `<p id="error">server_error</p>`));
    else res.end();
  });
});

server.on('error', (err) => {
  console.error(`[oidc] cannot listen: ${err.message}`);
  process.exit(1);
});

server.listen(Number(args.port), args.host, () => {
  const { port } = server.address();
  const hostInUrl = args.host.includes(':') ? `[${args.host}]` : args.host;
  const listening = `http://${hostInUrl}:${port}`;
  const issuer = (args.issuer ?? listening).replace(/\/$/, '');
  const parsed = URL.parse(issuer);
  if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.pathname !== '/' || parsed.search) {
    console.error(`[oidc] --issuer must be http(s)://host:port with no path: ${issuer}`);
    process.exit(2);
  }
  try {
    current = buildProvider(issuer, port);
  } catch (err) {
    console.error(`[oidc] cannot start: ${err.stack ?? err}`);
    process.exit(1);
  }
  console.error(`[oidc] issuer ${issuer}, state ${STATE}, signing kid ${current.kids[0]}`);
  process.stdout.write(`oidc-provider listening on ${listening}\n`);

  process.on('SIGHUP', () => {
    try {
      current = buildProvider(issuer, port);
      console.error(`[oidc] reloaded: signing kid ${current.kids[0]}, keys ${current.kids.join(' ')}`);
    } catch (err) {
      console.error(`[oidc] reload failed, keeping the previous configuration: ${err.stack ?? err}`);
    }
  });
});

function stop(signal) {
  console.error(`[oidc] ${signal}: stopping`);
  store?.flush();
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
