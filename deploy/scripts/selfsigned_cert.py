#!/usr/bin/env python3
"""Write a self-signed TLS certificate for nginx if none is there yet (dev and CI only).

    selfsigned_cert.py DIR [--name localhost] [--days 30]

Writes DIR/fullchain.pem and DIR/privkey.pem (mode 600) unless fullchain.pem exists, so a real
certificate (Let's Encrypt, see deploy/EC2.md) mounted at DIR is never replaced. Uses the
``cryptography`` package the image already has (through joserfc): no openssl binary needed.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from pathlib import Path


def write_certificate(folder: Path, name: str = "localhost", days: int = 30) -> bool:
    """Create the pair in ``folder``; ``False`` when a certificate is already there."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    if cert_path.exists():
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [
        x509.DNSName(name),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--name", default="localhost")
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args(argv)
    made = write_certificate(args.folder, args.name, args.days)
    print(f"{'wrote' if made else 'kept existing'} certificate in {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
