"""Signed JWTs and a JWKS for the OAUTHBEARER scenarios, with openssl and the
standard library only (no JOSE package in the venv).

    python3 jwt.py jwks KID KEY.pem                         # the JWKS document (RSA public key, RS256)
    python3 jwt.py sign KID KEY.pem CLAIMS_JSON             # an RS256 JWS compact serialization
    python3 jwt.py unsecured CLAIMS_JSON                    # alg none, empty signature

In CLAIMS_JSON, "exp" and "iat" may be given relative to now as strings
"+3600" / "-60".
"""

import base64
import json
import re
import subprocess
import sys
import time


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(text):
    now = int(time.time())
    c = json.loads(text)
    for k in ("exp", "iat", "nbf"):
        if isinstance(c.get(k), str) and c[k][:1] in "+-":
            c[k] = now + int(c[k])
    return c


def jwks(kid, key):
    text = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-text"], check=True,
                          capture_output=True, text=True).stdout
    modulus = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], check=True,
                             capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    exponent = int(re.search(r"publicExponent: (\d+)", text).group(1))
    n = bytes.fromhex(modulus)
    e = exponent.to_bytes((exponent.bit_length() + 7) // 8, "big")
    return json.dumps({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                                 "n": b64url(n), "e": b64url(e)}]})


def sign(kid, key, claims_json):
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64url(json.dumps(claims(claims_json)).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input,
                               check=True, capture_output=True).stdout
    return f"{header}.{payload}.{b64url(signature)}"


def unsecured(claims_json):
    header = b64url(json.dumps({"alg": "none"}).encode())
    return f"{header}.{b64url(json.dumps(claims(claims_json)).encode())}."


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    print({"jwks": jwks, "sign": sign, "unsecured": unsecured}[command](*args))
