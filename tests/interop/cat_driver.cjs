// Drives @eyevinn/cat (an implementation of CTA-5007 nobody here wrote) for the interop tests.
// Reads one JSON request on stdin, writes one JSON answer on stdout. Keys arrive as hex.
'use strict';
const { CAT } = require('@eyevinn/cat');
const { CommonAccessTokenFactory } = require('@eyevinn/cat/lib/cat');

const b64url = (buf) => Buffer.from(buf).toString('base64url');

async function run(req) {
  const key = req.key ? Buffer.from(req.key, 'hex') : undefined;
  switch (req.op) {
    case 'generate': {
      // HMAC (COSE_Mac0): the library's own generator. expectCwtTag selects its other output
      // (CWT tag 61 around COSE_Mac0 tag 17); see docs/cat.md for why that matters.
      const cat = new CAT({ keys: { [req.kid]: key }, expectCwtTag: !!req.cwtTag });
      const token = await cat.generateFromJson(req.claims, {
        type: 'mac',
        alg: 'HS256',
        kid: req.kid
      });
      return { token };
    }
    case 'validate': {
      const cat = new CAT({ keys: { [req.kid]: key }, expectCwtTag: !!req.cwtTag });
      const opts = { issuer: req.issuer };
      if (req.url) opts.url = new URL(req.url);
      if (req.ip) opts.ip = req.ip;
      const result = await cat.validate(req.token, 'mac', opts);
      if (result.error) return { error: result.error.message };
      // shouldRenew: the library's own reading of catr's deadline, compared with PlayGate's.
      return { claims: result.cat.claims, shouldRenew: result.cat.shouldRenew };
    }
    case 'sign': {
      // ES256 (COSE_Sign1): the library's token object signs with a P-256 private scalar.
      const cat = CommonAccessTokenFactory.fromDict(req.claims);
      await cat.sign({ d: Buffer.from(req.d, 'hex'), kid: req.kid }, 'ES256');
      return { token: b64url(cat.raw) };
    }
    case 'verify': {
      const token = Buffer.from(req.token, 'base64url').toString('base64');
      const cat = await CommonAccessTokenFactory.fromSignedToken(token, {
        x: Buffer.from(req.x, 'hex'),
        y: Buffer.from(req.y, 'hex'),
        kid: req.kid
      });
      return { claims: cat.claims };
    }
    case 'renew': {
      // The library's renewal: a new token from the old one's claims, exp = now + catr expadd.
      const cat = new CAT({ keys: { [req.kid]: key }, expectCwtTag: !!req.cwtTag });
      const opts = { issuer: req.issuer, url: new URL(req.url) };
      const result = await cat.validate(req.token, 'mac', opts);
      if (result.error) return { error: result.error.message };
      const token = await cat.renewToken(result.cat, {
        type: 'mac',
        alg: 'HS256',
        kid: req.kid,
        issuer: req.issuer
      });
      return { token };
    }
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

let input = '';
process.stdin.on('data', (chunk) => (input += chunk));
process.stdin.on('end', () => {
  run(JSON.parse(input))
    .then((answer) => process.stdout.write(JSON.stringify(answer)))
    .catch((err) => {
      process.stdout.write(JSON.stringify({ error: String(err && err.message ? err.message : err) }));
    });
});
