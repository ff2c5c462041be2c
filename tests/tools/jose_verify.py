"""Verifies a lethe certificate with an independent JOSE implementation (jwcrypto).

Usage: jose_verify.py CERT.json JWKS.json
Prints {"valid": true, "payload": {...}} and exits 0, or {"valid": false, "reason": "..."}
and exits 1. lethe's own verification code is not involved.
"""
import json
import sys

from jwcrypto import jwk, jws


def main() -> int:
    cert_text = open(sys.argv[1], encoding="utf-8").read()
    keys = jwk.JWKSet.from_json(open(sys.argv[2], encoding="utf-8").read())
    try:
        token = jws.JWS()
        token.allowed_algs = ["EdDSA"]
        token.deserialize(cert_text)
        header = json.loads(jws.base64url_decode(json.loads(cert_text)["protected"]))
        key = keys.get_key(header["kid"])
        if key is None:
            raise ValueError("unknown kid")
        token.verify(key, alg="EdDSA")
        print(json.dumps({"valid": True, "payload": json.loads(token.payload)}))
        return 0
    except Exception as e:  # any failure is an invalid certificate
        print(json.dumps({"valid": False, "reason": f"{type(e).__name__}: {e}"}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
