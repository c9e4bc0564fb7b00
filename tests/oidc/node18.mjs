// What oidc-provider 9 takes from Node ≥ 20.18 that Debian 12's Node 18 lacks, added before
// it loads (this module is imported first): `URL.parse`, as the WHATWG URL standard defines
// it (the URL, or null when it does not parse).
if (typeof URL.parse !== 'function') {
  URL.parse = (url, base) => {
    try {
      return new URL(url, base);
    } catch {
      return null;
    }
  };
}
