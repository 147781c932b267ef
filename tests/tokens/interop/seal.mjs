// Mints a SatGate token with the npm `macaroon` package and node's own crypto, from the SPEC alone:
// tenant root key and seal key by HKDF, the issuer's caveats, the seal, then any caveats a holder appends.
// stdin: {"master": base64url, "tenant", "kid", "token_id", "issued": [..], "appended": [..]}; stdout: the macaroon as v2 JSON.
import { hkdfSync, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import macaroon from "macaroon";

const input = JSON.parse(readFileSync(0, "utf8"));
const master = Buffer.from(input.master, "base64url");
const derive = (info) => new Uint8Array(hkdfSync("sha256", master, Buffer.from("satgate-v1"), Buffer.from(info), 32));
const text = (s) => new TextEncoder().encode(s);

const m = macaroon.newMacaroon({
  version: 2,
  rootKey: derive(`tenant:${input.tenant}`),
  identifier: text(`sg1:${input.tenant}:${input.kid}:${input.token_id}`),
  location: "satgate",
});
for (const caveat of input.issued) m.addFirstPartyCaveat(text(caveat));
const seal = createHmac("sha256", derive(`seal:${input.tenant}`)).update(m.signature).digest("hex").slice(0, 32);
m.addFirstPartyCaveat(text(`seal = ${seal}`));
for (const caveat of input.appended) m.addFirstPartyCaveat(text(caveat));
// v2 JSON: this version's exportBinary cannot grow its buffer past 200 bytes (ByteBuffer._grow reads an
// undefined _capacity), so the Python side re-encodes the same fields as v2 binary with pymacaroons.
process.stdout.write(JSON.stringify(m.exportJSON()));
