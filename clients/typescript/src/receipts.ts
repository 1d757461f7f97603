/**
 * Offline receipt verification with WebCrypto: ECDSA P-256 / SHA-256 over the UTF-8 payload, the signature in IEEE
 * P1363 form (r || s), base64url. An executor proves it holds a real approval for this exact job with the tenant's
 * public keys only.
 */
import { ReceiptInvalid } from "./errors.js";
import type { ApprovalReceipt, PublicSigningKey, ReceiptClaims } from "./types.js";

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const normal = text.replace(/-/g, "+").replace(/_/g, "/");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(normal)) throw new ReceiptInvalid("malformed signature");
  return Uint8Array.from(Buffer.from(normal, "base64"));
}

/** The receipt's claims when the signature is valid, it is current, approves and names `jobHash`; throws ReceiptInvalid otherwise. */
export async function verifyReceipt(receipt: ApprovalReceipt, keys: readonly PublicSigningKey[], jobHash: string,
  now: Date = new Date()): Promise<ReceiptClaims> {
  const key = keys.find((k) => k.kid === receipt.kid);
  if (!key) throw new ReceiptInvalid("unknown key");
  let publicKey: CryptoKey;
  try {
    publicKey = await crypto.subtle.importKey("spki", Uint8Array.from(Buffer.from(key.publicKey, "base64")),
      { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  } catch {
    throw new ReceiptInvalid("malformed key");
  }
  const signature = fromBase64(receipt.signature);
  if (signature.length !== 64) throw new ReceiptInvalid("malformed signature");
  const valid = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, publicKey, signature,
    new TextEncoder().encode(receipt.payload));
  if (!valid) throw new ReceiptInvalid("bad signature");
  let claims: ReceiptClaims;
  try {
    claims = JSON.parse(receipt.payload) as ReceiptClaims;
  } catch {
    throw new ReceiptInvalid("malformed payload");
  }
  if (claims.kid !== receipt.kid || typeof claims.expiresAt !== "string") throw new ReceiptInvalid("malformed payload");
  if (now.getTime() > Date.parse(claims.expiresAt)) throw new ReceiptInvalid("expired");
  if (claims.decision !== "approved") throw new ReceiptInvalid(`decision is ${claims.decision}`);
  if (claims.jobHash !== jobHash) throw new ReceiptInvalid("a different job");
  return claims;
}
