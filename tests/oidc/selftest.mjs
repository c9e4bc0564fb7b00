#!/usr/bin/env node
// Walks every flow of provider.mjs against a real oidc-provider on a free loopback port:
// authorization code + PKCE through the login form, refresh with changed claims, userinfo,
// client_credentials, a 3-second token expiring, key rotation (SIGHUP), restart on the same
// port. Exits 0 when all pass.   node selftest.mjs [--keep]   (--keep: leave the state dir)

import { spawn, execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as nodeHttp from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PROVIDER = path.join(HERE, 'provider.mjs');
const KEEP = process.argv.includes('--keep');
const started = Date.now();

let passed = 0;
let skipped = 0;
function ok(name) {
  passed += 1;
  console.log(`ok ${passed} - ${name}`);
}
function check(cond, name, detail) {
  if (!cond) {
    const err = new Error(`${name}${detail === undefined ? '' : `: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`}`);
    err.check = name;
    throw err;
  }
  ok(name);
}

// --- provider process ------------------------------------------------------------------

const STATE = fs.mkdtempSync(path.join(os.tmpdir(), 'ioc-oidc-selftest-'));
const children = new Set();
let stderrLog = '';

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function startProvider(port, extra = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [
      PROVIDER, '--port', String(port), '--issuer', `http://127.0.0.1:${port}`,
      '--state', STATE, '--access-ttl', '300', ...extra,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    child.on('exit', () => children.delete(child));
    let out = '';
    const timer = setTimeout(() => reject(new Error('provider not ready in 15 s')), 15000);
    child.stderr.on('data', (d) => { stderrLog += d; });
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^oidc-provider listening on (\S+)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], line: out.split('\n')[0] });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`provider exited early (${code})`));
    });
  });
}

function stopProvider(child) {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.kill('SIGTERM');
  });
}

// --- HTTP with a cookie jar ------------------------------------------------------------

const jar = new Map();
function storeCookies(res) {
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attrs.some((a) => {
      const [k, v] = a.trim().split('=');
      if (k.toLowerCase() === 'max-age') return Number(v) <= 0;
      if (k.toLowerCase() === 'expires') return Date.parse(v) <= Date.now();
      return false;
    });
    if (expired || value === '') jar.delete(name);
    else jar.set(name, value);
  }
}

async function http(url, { method = 'GET', form, headers = {}, cookies = true } = {}) {
  const h = { ...headers };
  if (cookies && jar.size) h.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  let body;
  if (form) {
    body = new URLSearchParams(form).toString();
    h['content-type'] = 'application/x-www-form-urlencoded';
  }
  const res = await fetch(url, { method, headers: h, body, redirect: 'manual' });
  if (cookies) storeCookies(res);
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { /* html */ }
  return { status: res.status, location: res.headers.get('location'), text, json, headers: res.headers };
}

// --- JWT helpers -----------------------------------------------------------------------

const b64json = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
function decode(jwt) {
  const [h, p] = jwt.split('.');
  return { header: b64json(h), payload: b64json(p) };
}
async function verify(jwt, jwksUrl) {
  const [h, p, s] = jwt.split('.');
  const header = b64json(h);
  const { keys } = (await http(jwksUrl, { cookies: false })).json;
  const jwk = keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Error(`no key ${header.kid} in the JWKS`);
  if (header.alg !== 'RS256') throw new Error(`alg ${header.alg}`);
  const good = crypto.verify('RSA-SHA256', Buffer.from(`${h}.${p}`),
    crypto.createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
  if (!good) throw new Error('bad signature');
  return { header, payload: b64json(p) };
}

const pkce = () => {
  const verifier = crypto.randomBytes(32).toString('base64url');
  return { verifier, challenge: crypto.createHash('sha256').update(verifier).digest('base64url') };
};

function writeAccounts(accounts) {
  const file = path.join(STATE, 'accounts.json');
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(accounts, null, 2));
  fs.renameSync(`${file}.tmp`, file); // atomically
}

const ACCOUNTS = {
  lan: { password: 'lan-password', name: 'Nguyễn Thị Lan', ioc_role: 'operator', ioc_units: ['16681'] },
  minh: { password: 'minh-password', name: 'Trần Văn Minh', ioc_role: 'supervisor', ioc_units: [] },
};

// --- a real browser through WebDriver (when chromedriver is installed) ------------------

const CHROMEDRIVER = ['/usr/bin/chromedriver', '/usr/lib/chromium/chromedriver'].find((f) => fs.existsSync(f));
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((f) => fs.existsSync(f));

async function browserSignIn(authorizeUrl, callbackPort, username, password) {
  const wdPort = await freePort();
  const driver = spawn(CHROMEDRIVER, [`--port=${wdPort}`], { stdio: 'ignore' });
  children.add(driver);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ioc-oidc-chromium-'));
  const got = {};
  const cb = nodeHttp.createServer((req, res) => {
    if (req.url.startsWith('/api/auth/oidc/callback')) got.url = `http://127.0.0.1:${callbackPort}${req.url}`;
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end('<!DOCTYPE html><title>callback</title><p id="done">back at the console</p>');
  });
  await new Promise((res) => { cb.listen(callbackPort, '127.0.0.1', res); });
  const wd = async (method, p, body) => {
    const res = await fetch(`http://127.0.0.1:${wdPort}${p}`, {
      method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`WebDriver ${method} ${p}: ${JSON.stringify(json.value)}`);
    return json.value;
  };
  try {
    for (let i = 0; ; i += 1) {
      try { if ((await wd('GET', '/status')).ready) break; } catch { /* not up yet */ }
      if (i > 100) throw new Error('chromedriver did not start');
      await new Promise((res) => { setTimeout(res, 100); });
    }
    const session = await wd('POST', '/session', {
      capabilities: {
        alwaysMatch: {
          browserName: 'chrome',
          'goog:chromeOptions': {
            ...(CHROMIUM ? { binary: CHROMIUM } : {}),
            args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync',
              `--user-data-dir=${profile}`],
          },
        },
      },
    });
    const sid = session.sessionId;
    const el = async (css) => Object.values(await wd('POST', `/session/${sid}/element`, { using: 'css selector', value: css }))[0];
    try {
      await wd('POST', `/session/${sid}/url`, { url: authorizeUrl });
      await wd('POST', `/session/${sid}/element/${await el('#username')}/value`, { text: username });
      await wd('POST', `/session/${sid}/element/${await el('#password')}/value`, { text: password });
      await wd('POST', `/session/${sid}/element/${await el('#submit')}/click`, {});
      for (let i = 0; i < 100 && !got.url; i += 1) await new Promise((res) => { setTimeout(res, 100); });
      const at = await wd('GET', `/session/${sid}/url`);
      return { callbackUrl: got.url, browserUrl: at };
    } finally {
      await wd('DELETE', `/session/${sid}`).catch(() => {});
    }
  } finally {
    cb.close();
    driver.kill('SIGTERM');
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

// --- the walk --------------------------------------------------------------------------

async function main() {
  writeAccounts(ACCOUNTS);
  const port = await freePort();
  const ISS = `http://127.0.0.1:${port}`;
  let p = await startProvider(port);
  check(p.line === `oidc-provider listening on ${ISS}`, 'ready line on stdout', p.line);

  const disco = (await http(`${ISS}/.well-known/openid-configuration`, { cookies: false })).json;
  check(disco.issuer === ISS && disco.token_endpoint === `${ISS}/token`
    && disco.code_challenge_methods_supported.includes('S256'), 'discovery', disco);
  const JWKS = disco.jwks_uri;
  const jwks0 = (await http(JWKS, { cookies: false })).json.keys;
  check(jwks0.length === 1 && jwks0[0].kty === 'RSA' && !jwks0[0].d, 'JWKS publishes one public RSA key');
  const KID1 = jwks0[0].kid;

  // Authorization code + PKCE, the way the console does it (prompt=consent, no resource).
  async function authorize(clientId, redirectUri, { prompt = 'consent', extra = {}, login } = {}) {
    const { verifier, challenge } = pkce();
    const state = crypto.randomBytes(8).toString('hex');
    const nonce = crypto.randomBytes(8).toString('hex');
    const q = new URLSearchParams({
      client_id: clientId, response_type: 'code', scope: 'openid profile offline_access',
      redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256',
      state, nonce, ...(prompt ? { prompt } : {}), ...extra,
    });
    let r = await http(`${disco.authorization_endpoint}?${q}`);
    const hops = [];
    let sawForm = false;
    for (let i = 0; i < 10 && r.location && !r.location.startsWith(redirectUri); i += 1) {
      hops.push(r.location);
      r = await http(new URL(r.location, ISS).href);
      if (r.status === 200 && r.text.includes('id="login"')) {
        sawForm = true;
        if (!login) throw new Error('login form shown but no credentials given');
        const action = /action="([^"]+)"/.exec(r.text)[1];
        r = await http(new URL(action, ISS).href, { method: 'POST', form: login });
      } else if (r.status === 200 && r.text.includes('document.forms[0].submit()')) {
        // Another user signs in over an existing session: oidc-provider ends the old session
        // through a form that a browser submits by itself (JavaScript).
        const action = /<form method="post" action="([^"]+)"/.exec(r.text)[1];
        const fields = Object.fromEntries([...r.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)].map((m) => [m[1], m[2]]));
        hops.push(action);
        r = await http(new URL(action, ISS).href, { method: 'POST', form: fields });
      }
    }
    if (!r.location?.startsWith(redirectUri)) throw new Error(`no redirect back: ${r.status} ${r.text.slice(0, 3000)}`);
    const back = new URL(r.location);
    return { back, verifier, state, nonce, sawForm, hops };
  }
  async function exchange(clientId, redirectUri, code, verifier, extra = {}) {
    return http(disco.token_endpoint, {
      method: 'POST', cookies: false,
      form: { grant_type: 'authorization_code', client_id: clientId, redirect_uri: redirectUri, code, code_verifier: verifier, ...extra },
    });
  }
  async function refresh(clientId, refreshToken, extra = {}) {
    return http(disco.token_endpoint, {
      method: 'POST', cookies: false,
      form: { grant_type: 'refresh_token', client_id: clientId, refresh_token: refreshToken, ...extra },
    });
  }

  // The login form itself, step by step.
  const RU1 = 'http://127.0.0.1:18080/api/auth/oidc/callback';
  {
    const { verifier, challenge } = pkce();
    const q = new URLSearchParams({
      client_id: 'ioc-console', response_type: 'code', scope: 'openid profile offline_access',
      redirect_uri: RU1, code_challenge: challenge, code_challenge_method: 'S256', state: 's1', nonce: 'n1', prompt: 'consent',
    });
    let r = await http(`${disco.authorization_endpoint}?${q}`);
    check(r.status === 303 && /^\/interaction\/[\w-]+$/.test(new URL(r.location, ISS).pathname), 'authorize redirects to /interaction/:uid', r.location);
    const interaction = new URL(r.location, ISS).href;
    r = await http(interaction);
    check(r.status === 200 && r.text.includes('id="username" name="username"')
      && r.text.includes('id="password" name="password" type="password"')
      && r.text.includes('id="submit" type="submit"'), 'login form has username, password, submit');
    const action = new URL(/action="([^"]+)"/.exec(r.text)[1], ISS).href;
    check(action === `${interaction}/login`, 'form posts to /interaction/:uid/login');
    r = await http(action, { method: 'POST', form: { username: 'lan', password: 'wrong' } });
    check(r.status === 401 && r.text.includes('id="error"') && r.text.includes('value="lan"'), 'wrong password: 401, form again with #error');
    r = await http(action, { method: 'POST', form: { username: 'lan', password: 'lan-password' } });
    check(r.status === 303, 'right password: 303 back to the authorization endpoint', r.status);
    const hops = [];
    while (r.location && !r.location.startsWith(RU1) && hops.length < 10) {
      hops.push(new URL(r.location, ISS).pathname.replace(/[\w-]{20,}/, ':uid'));
      r = await http(new URL(r.location, ISS).href);
    }
    check(r.location?.startsWith(RU1), 'consent given without a page; redirected to the callback', hops);
    const back = new URL(r.location);
    check(back.searchParams.get('state') === 's1' && back.searchParams.get('iss') === ISS && back.searchParams.get('code'),
      'callback has code, state and iss', r.location);
    const bad = await exchange('ioc-console', RU1, back.searchParams.get('code'), pkce().verifier);
    check(bad.status === 400 && bad.json.error === 'invalid_grant', 'wrong code_verifier: invalid_grant', bad.json);
    const good = await exchange('ioc-console', RU1, back.searchParams.get('code'), verifier);
    check(good.status === 200 && good.json.id_token, 'right code_verifier: tokens', good.json);
    const again = await exchange('ioc-console', RU1, back.searchParams.get('code'), verifier);
    check(again.status === 400 && again.json.error === 'invalid_grant', 'a code is good once only', again.json);
  }
  jar.clear();

  // Full sign-in of lan, console-style, callback on a random loopback port.
  const RU2 = `http://127.0.0.1:${port === 40001 ? 40002 : 40001}/api/auth/oidc/callback`;
  let a = await authorize('ioc-console', RU2, { login: { username: 'lan', password: 'lan-password' } });
  check(a.sawForm && a.back.searchParams.get('state') === a.state, 'code flow through the login form (any loopback port)');
  let r = await exchange('ioc-console', RU2, a.back.searchParams.get('code'), a.verifier);
  check(r.status === 200 && r.json.token_type === 'Bearer' && r.json.refresh_token && r.json.id_token && r.json.access_token,
    'code + code_verifier: access, ID and refresh tokens', r.json);
  check(r.json.scope === 'openid profile offline_access' && r.json.expires_in === 300, 'scope and expires_in', r.json);
  let id = await verify(r.json.id_token, JWKS);
  check(id.header.kid === KID1 && id.payload.iss === ISS && id.payload.aud === 'ioc-console' && id.payload.sub === 'lan'
    && id.payload.nonce === a.nonce, 'ID token: signed, iss, aud = client id, sub, nonce', id);
  check(id.payload.preferred_username === 'lan' && id.payload.name === 'Nguyễn Thị Lan'
    && id.payload.ioc_role === 'operator' && JSON.stringify(id.payload.ioc_units) === '["16681"]', 'ID token claims', id.payload);
  let at = await verify(r.json.access_token, JWKS);
  check(at.header.typ === 'at+jwt' && at.payload.aud === 'urn:ioc:api' && at.payload.iss === ISS && at.payload.sub === 'lan'
    && at.payload.client_id === 'ioc-console' && at.payload.exp - at.payload.iat === 300, 'access token: JWT (at+jwt), aud urn:ioc:api, 300 s', at);
  check(at.payload.ioc_role === 'operator' && JSON.stringify(at.payload.ioc_units) === '["16681"]'
    && at.payload.preferred_username === 'lan' && at.payload.name === 'Nguyễn Thị Lan', 'access token claims', at.payload);
  const me = await http(disco.userinfo_endpoint, { cookies: false, headers: { authorization: `Bearer ${r.json.access_token}` } });
  check(me.status === 401, 'userinfo refuses a JWT access token for the API (oidc-provider 9)', me.status);
  let rt = r.json.refresh_token;

  // Another port, same client: RFC 8252 loopback redirect; the session signs in without the form.
  const RU3 = 'http://127.0.0.1:51234/api/auth/oidc/callback';
  a = await authorize('ioc-console', RU3);
  check(!a.sawForm && a.back.searchParams.get('code'), 'second sign-in, other port: SSO session, no form');
  r = await exchange('ioc-console', RU3, a.back.searchParams.get('code'), a.verifier);
  check(r.status === 200 && r.json.refresh_token, 'its code exchanges too');

  const badRedirect = await http(`${disco.authorization_endpoint}?${new URLSearchParams({
    client_id: 'ioc-console', response_type: 'code', scope: 'openid', redirect_uri: 'http://127.0.0.1:5000/elsewhere',
    code_challenge: pkce().challenge, code_challenge_method: 'S256',
  })}`);
  check(badRedirect.status === 400 && badRedirect.text.includes('redirect_uri did not match'), 'an unregistered path is refused', badRedirect.text.slice(0, 200));
  const noPkce = await http(`${disco.authorization_endpoint}?${new URLSearchParams({
    client_id: 'ioc-console', response_type: 'code', scope: 'openid', redirect_uri: RU3, state: 'x',
  })}`);
  check(noPkce.status === 303 && new URL(noPkce.location).searchParams.get('error') === 'invalid_request', 'PKCE is required', noPkce.location);

  // Refresh after the role changed at the provider.
  writeAccounts({ ...ACCOUNTS, lan: { ...ACCOUNTS.lan, ioc_role: 'supervisor', ioc_units: ['16681', '16690'] } });
  r = await refresh('ioc-console', rt);
  check(r.status === 200 && r.json.id_token && r.json.refresh_token && r.json.refresh_token !== rt, 'refresh: new tokens, refresh token rotated', r.json);
  id = await verify(r.json.id_token, JWKS);
  at = await verify(r.json.access_token, JWKS);
  check(id.payload.ioc_role === 'supervisor' && JSON.stringify(id.payload.ioc_units) === '["16681","16690"]', 'refreshed ID token has the new role and units', id.payload);
  check(at.payload.ioc_role === 'supervisor' && at.payload.aud === 'urn:ioc:api', 'refreshed access token has the new role', at.payload);
  const oldRt = rt;
  rt = r.json.refresh_token;

  // Userinfo: a client whose token requests without resource= get an opaque token.
  a = await authorize('ioc-console-userinfo', RU3);
  check(!a.sawForm, 'ioc-console-userinfo signs in through the same session');
  r = await exchange('ioc-console-userinfo', RU3, a.back.searchParams.get('code'), a.verifier);
  check(r.status === 200 && r.json.access_token.split('.').length === 1, 'no resource=: opaque access token', r.json.access_token);
  const ui = await http(disco.userinfo_endpoint, { cookies: false, headers: { authorization: `Bearer ${r.json.access_token}` } });
  check(ui.status === 200 && ui.json.sub === 'lan' && ui.json.ioc_role === 'supervisor' && JSON.stringify(ui.json.ioc_units) === '["16681","16690"]'
    && ui.json.name === 'Nguyễn Thị Lan' && ui.json.preferred_username === 'lan', 'userinfo has the claims', ui.json);
  const withResource = await refresh('ioc-console-userinfo', r.json.refresh_token, { resource: 'urn:ioc:api' });
  check(withResource.status === 200 && decode(withResource.json.access_token).payload.aud === 'urn:ioc:api', 'resource=urn:ioc:api: JWT access token', withResource.json);

  // client_credentials.
  const basic = (id_, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id_)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  r = await http(disco.token_endpoint, { method: 'POST', cookies: false, headers: { authorization: basic('ioc-integration', 'ioc-integration-secret') }, form: { grant_type: 'client_credentials' } });
  check(r.status === 200 && r.json.expires_in === 300 && !r.json.refresh_token, 'client_credentials: token', r.json);
  at = await verify(r.json.access_token, JWKS);
  check(at.header.typ === 'at+jwt' && at.payload.aud === 'urn:ioc:api' && at.payload.sub === 'ioc-integration'
    && at.payload.client_id === 'ioc-integration' && at.payload.ioc_role === 'operator'
    && JSON.stringify(at.payload.ioc_units) === '["16681"]' && at.payload.preferred_username === 'svc-integration', 'client_credentials JWT: aud, sub, service account claims', at.payload);
  const ccOld = r.json.access_token;
  r = await http(disco.token_endpoint, { method: 'POST', cookies: false, headers: { authorization: basic('ioc-integration', 'nope') }, form: { grant_type: 'client_credentials' } });
  check(r.status === 401 && r.json.error === 'invalid_client', 'wrong client secret: invalid_client', r.json);

  // A 3-second token.
  r = await http(disco.token_endpoint, { method: 'POST', cookies: false, headers: { authorization: basic('ioc-integration-short', 'ioc-integration-short-secret') }, form: { grant_type: 'client_credentials' } });
  at = await verify(r.json.access_token, JWKS);
  check(r.json.expires_in === 3 && at.payload.exp - at.payload.iat === 3 && at.payload.exp > Date.now() / 1000, 'short-lived token: 3 s, valid now', at.payload);
  await new Promise((res) => { setTimeout(res, (at.payload.exp + 1) * 1000 - Date.now()); });
  check(at.payload.exp < Date.now() / 1000, 'short-lived token: expired a moment later');

  // Key rotation: a new key first in jwks.json, then SIGHUP.
  const KID2 = execFileSync(process.execPath, [PROVIDER, '--add-key', '--state', STATE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  check(KID2 && KID2 !== KID1, '--add-key puts a new key first', KID2);
  p.child.kill('SIGHUP');
  let kids = [];
  for (let i = 0; i < 50 && !kids.includes(KID2); i += 1) {
    kids = (await http(JWKS, { cookies: false })).json.keys.map((k) => k.kid);
    if (!kids.includes(KID2)) await new Promise((res) => { setTimeout(res, 100); });
  }
  check(kids.length === 2 && kids[0] === KID2 && kids[1] === KID1, 'after SIGHUP the JWKS publishes both keys', kids);
  r = await http(disco.token_endpoint, { method: 'POST', cookies: false, headers: { authorization: basic('ioc-integration', 'ioc-integration-secret') }, form: { grant_type: 'client_credentials' } });
  check(decode(r.json.access_token).header.kid === KID2, 'new access tokens are signed with the new key');
  await verify(ccOld, JWKS);
  ok('tokens signed before the rotation still verify against the JWKS');
  r = await refresh('ioc-console', rt);
  check(r.status === 200 && decode(r.json.id_token).header.kid === KID2 && decode(r.json.access_token).header.kid === KID2,
    'a refresh token from before SIGHUP still works; new ID/access tokens use the new key', r.json);
  rt = r.json.refresh_token;

  // Restart on the same port: state (sessions, refresh tokens) and keys are kept in --state.
  const stopped = await stopProvider(p.child);
  check(stopped.code === 0, 'SIGTERM: clean exit 0', stopped);
  p = await startProvider(port);
  check(p.url === ISS, 'restarted on the same port');
  r = await refresh('ioc-console', rt);
  check(r.status === 200 && decode(r.json.id_token).header.kid === KID2, 'refresh after the restart', r.json);
  rt = r.json.refresh_token;

  // Disabled accounts, refresh-token reuse.
  writeAccounts({ ...ACCOUNTS, lan: { ...ACCOUNTS.lan, disabled: true } });
  r = await refresh('ioc-console', rt);
  check(r.status === 400 && r.json.error === 'invalid_grant', 'disabled account: refresh refused', r.json);
  writeAccounts(ACCOUNTS);
  r = await refresh('ioc-console', rt);
  check(r.status === 200 && decode(r.json.id_token).payload.ioc_role === 'operator', 'enabled again: the same refresh token works', r.json);
  rt = r.json.refresh_token;
  r = await refresh('ioc-console', oldRt);
  check(r.status === 400 && r.json.error === 'invalid_grant', 'a rotated (used) refresh token is refused', r.json);
  r = await refresh('ioc-console', rt);
  check(r.status === 400 && r.json.error === 'invalid_grant', '... and its reuse revoked the whole grant', r.json);

  // A fresh login despite the session: prompt=login consent (prompt=login alone drops offline_access).
  a = await authorize('ioc-console', RU3, { prompt: 'login consent', login: { username: 'minh', password: 'minh-password' } });
  r = await exchange('ioc-console', RU3, a.back.searchParams.get('code'), a.verifier);
  check(a.sawForm && r.status === 200 && r.json.refresh_token && decode(r.json.id_token).payload.sub === 'minh'
    && decode(r.json.id_token).payload.ioc_role === 'supervisor', 'prompt=login consent: the form again, another user', r.json);

  // RP-initiated logout back to a loopback address.
  {
    const post = 'http://127.0.0.1:51234/';
    let x = await http(`${disco.end_session_endpoint}?${new URLSearchParams({ id_token_hint: r.json.id_token, post_logout_redirect_uri: post, state: 'bye' })}`);
    check(x.status === 200 && x.text.includes('id="logout"'), 'logout page with a #logout button');
    const form = Object.fromEntries([...x.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const actionUrl = new URL(/<form[^>]* action="([^"]+)"/.exec(x.text)[1], ISS).href;
    x = await http(actionUrl, { method: 'POST', form: { ...form, logout: 'yes' } });
    check(x.status === 303 && x.location === `${post}?state=bye`, 'logout confirmed: back to post_logout_redirect_uri', x.location);
    a = await authorize('ioc-console', RU3, { login: { username: 'lan', password: 'lan-password' } });
    check(a.sawForm, 'after logout the form is shown again');
  }

  // Abort at the login form.
  jar.clear();
  {
    const q = new URLSearchParams({
      client_id: 'ioc-console', response_type: 'code', scope: 'openid profile', redirect_uri: RU1,
      code_challenge: pkce().challenge, code_challenge_method: 'S256', state: 's9',
    });
    let x = await http(`${disco.authorization_endpoint}?${q}`);
    x = await http(`${new URL(x.location, ISS).href}/abort`);
    for (let i = 0; i < 5 && !x.location?.startsWith(RU1); i += 1) x = await http(new URL(x.location, ISS).href);
    check(new URL(x.location).searchParams.get('error') === 'access_denied', 'Cancel at the form: error=access_denied', x.location);
  }

  // The same sign-in in headless Chromium driven through WebDriver, as the console's
  // end-to-end tests will do it.
  if (CHROMEDRIVER) {
    const cbPort = await freePort();
    const redirectUri = `http://127.0.0.1:${cbPort}/api/auth/oidc/callback`;
    const { verifier, challenge } = pkce();
    const url = `${disco.authorization_endpoint}?${new URLSearchParams({
      client_id: 'ioc-console', response_type: 'code', scope: 'openid profile offline_access', prompt: 'consent',
      redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state: 'chromium', nonce: 'n-chromium',
    })}`;
    const b = await browserSignIn(url, cbPort, 'lan', 'lan-password');
    check(b.callbackUrl?.startsWith(`${redirectUri}?code=`) && b.browserUrl.startsWith(redirectUri), 'Chromium (WebDriver): form filled, landed on the callback', b);
    const code = new URL(b.callbackUrl).searchParams.get('code');
    r = await exchange('ioc-console', redirectUri, code, verifier);
    check(r.status === 200 && decode(r.json.id_token).payload.nonce === 'n-chromium' && r.json.refresh_token, 'Chromium: its code exchanges', r.json);
  } else {
    skipped += 1;
    console.log('ok - # SKIP Chromium walk: no chromedriver');
  }

  const end = await stopProvider(p.child);
  check(end.code === 0, 'stopped');
}

main().then(() => {
  console.log(`selftest: ${passed} checks in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, 0 failed${skipped ? `, ${skipped} skipped` : ''}`);
  if (!KEEP) fs.rmSync(STATE, { recursive: true, force: true });
  else console.log(`state kept in ${STATE}`);
  process.exit(0);
}, (err) => {
  console.log(`not ok ${passed + 1} - ${err.check ?? 'error'}`);
  console.error(err.stack);
  console.error(`--- provider stderr ---\n${stderrLog}`);
  console.log(`${passed} passed, 1 failed`);
  console.error(`state kept in ${STATE}`);
  for (const child of children) child.kill('SIGTERM');
  process.exit(1);
});
