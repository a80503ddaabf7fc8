"""A local stand-in for Clerk: a JWKS endpoint on 127.0.0.1 serving keys the test generates, and
session tokens shaped like Clerk's (RS256, iss, sub, azp, sid)."""

from __future__ import annotations

import base64
import functools
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://clerk.example.test"
ORIGIN = "https://app.example.test"


class JwksServer:
    """A local stand-in for Clerk's `/.well-known/jwks.json`; the served keys can be swapped."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        serve = functools.partial(self._httpd.serve_forever, poll_interval=0.01)
        self._thread = threading.Thread(target=serve, daemon=True)

    def serve(self, *keys: tuple[str, rsa.RSAPrivateKey]) -> None:
        self.keys = [
            {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig", "alg": "RS256"}
            for kid, key in keys
        ]

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def clerk_token(key: rsa.RSAPrivateKey, kid: str = "kid-a", *, lifetime: int = 60, **claims: Any) -> str:
    now = int(datetime.now(UTC).timestamp())  # Clerk tokens are checked against real time
    payload = {"iss": ISSUER, "sub": "user_2abc", "azp": ORIGIN, "sid": "sess_1"}
    payload |= {"iat": now - 5, "nbf": now - 5, "exp": now + lifetime} | claims
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, "RS256", {"kid": kid})


def publishable_key(host: str, prefix: str = "pk_test_", pad: bool = True) -> str:
    encoded = base64.b64encode(host.encode()).decode()
    return prefix + (encoded if pad else encoded.rstrip("="))
