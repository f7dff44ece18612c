"""The cluster's certificate authority: one certificate per node with its role in it, revocation by CRL.

A certificate names its holder twice: the subject (O=pullprint, OU=<role>, CN=<name>) and a DNS
name ``<name>.<role>.pullprint`` in its subjectAltName, beside the real host names and addresses
of the host. Callers check the DNS identity (a collector calling ``c2`` expects
``c2.collector.pullprint``), servers read the subject. Nothing else makes a peer a peer: not a
Redis record, not a URL, not a token.

Files of a CA folder (``pullprint ca init DIR``): ``ca.pem`` (public, goes to every host),
``ca.key`` (0600, stays on the CA host), ``crl.pem`` (the signed revocation list, re-issued by every
revocation and before it goes stale), ``issued.json`` (what was issued, to revoke by name).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pullprint.errors import BadRequest

ROLES = ("collector", "analyst", "lb", "print-server", "mail", "admin", "redis", "database")
# Roles that answer TLS connections (the others only call); mail: the mail gateway's STARTTLS.
SERVER_ROLES = ("collector", "analyst", "lb", "mail", "redis", "database")
POOLED_ROLES = ("analyst",)  # any one of them serves: callers check the pool name
DOMAIN = "pullprint"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
CRL_DAYS = 7          # a CRL is good for a week; `ca crl` (or any revocation) re-issues it
CERT_DAYS = 397
CA_DAYS = 3650


@dataclass(frozen=True)
class Identity:
    role: str
    name: str
    serial: int

    @property
    def dns(self) -> str:
        return identity_dns(self.role, self.name)

    def __str__(self) -> str:
        return f"{self.role}:{self.name}"


def identity_dns(role: str, name: str) -> str:
    """The DNS name in a node's certificate that says what it is, e.g. ``c2.collector.pullprint``."""
    return f"{name}.{role}.{DOMAIN}"


def pool_dns(role: str) -> str:
    """The DNS name every certificate of a pooled role carries (``analyst.pullprint``): callers that
    may reach any analyst of the pool expect this one."""
    return f"{role}.{DOMAIN}"


def identity_of(certificate: bytes | x509.Certificate) -> Identity | None:
    """The role and name a cluster certificate (DER, or parsed) carries; None for any other certificate."""
    cert = x509.load_der_x509_certificate(certificate) if isinstance(certificate, bytes) else certificate
    subject = cert.subject
    org = [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    roles = [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    names = [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if org != [DOMAIN] or len(roles) != 1 or len(names) != 1 or roles[0] not in ROLES:
        return None
    return Identity(str(roles[0]), str(names[0]), cert.serial_number)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(frozen=True)
class Authority:
    """A CA folder."""

    directory: Path

    @property
    def cert_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def key_file(self) -> Path:
        return self.directory / "ca.key"

    @property
    def crl_file(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def registry_file(self) -> Path:
        return self.directory / "issued.json"

    def exists(self) -> bool:
        return self.cert_file.exists() and self.key_file.exists()

    def _load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        if not self.exists():
            raise BadRequest("no-ca", f"no cluster CA in {self.directory} (run: pullprint ca init {self.directory})")
        cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key

    def _registry(self) -> list[dict[str, object]]:
        if not self.registry_file.exists():
            return []
        return list(json.loads(self.registry_file.read_text()))

    def _save_registry(self, entries: list[dict[str, object]]) -> None:
        _write(self.registry_file, json.dumps(entries, indent=1).encode(), 0o600)

    # -- init ------------------------------------------------------------------------------------
    def init(self, common_name: str = "pullprint cluster CA") -> bool:
        """Create the CA (key, certificate, empty CRL); False when it exists already (nothing changes)."""
        if self.exists():
            return False
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, DOMAIN),
                          x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=True, crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        _write(self.key_file, _key_pem(key), 0o600)
        _write(self.cert_file, cert.public_bytes(serialization.Encoding.PEM))
        self._save_registry([])
        self.write_crl()
        return True

    # -- issue -----------------------------------------------------------------------------------
    def issue(self, role: str, name: str, hosts: Iterable[str] = (), *, out_dir: Path | None = None,
              days: int = CERT_DAYS) -> tuple[Path, Path]:
        """A new key and certificate for node `name` in `role`, valid for `hosts` too; (cert file, key file).

        Written to `out_dir` (default: the CA folder's ``issued/``) as ``<role>-<name>.pem`` and
        ``<role>-<name>.key`` (0600). Issuing again for the same node makes a new key; the old
        certificate stays valid until it expires or is revoked.
        """
        if role not in ROLES:
            raise BadRequest("bad-role", f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not NAME.match(name):
            raise BadRequest("bad-name", f"a node name is 1-63 letters, digits, '.', '_' or '-': {name!r}")
        ca_cert, ca_key = self._load()
        key = ec.generate_private_key(ec.SECP256R1())
        alt: list[x509.GeneralName] = [x509.DNSName(identity_dns(role, name))]
        if role in POOLED_ROLES:
            alt.append(x509.DNSName(pool_dns(role)))
        for host in hosts:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt.append(x509.DNSName(host))
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if role in SERVER_ROLES:
            usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
        now = _now()
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, DOMAIN),
                             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                             x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=False, crl_sign=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
                .add_extension(x509.SubjectAlternativeName(alt), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        folder = out_dir or self.directory / "issued"
        folder.mkdir(parents=True, exist_ok=True, mode=0o755)
        cert_path, key_path = folder / f"{role}-{name}.pem", folder / f"{role}-{name}.key"
        _write(key_path, _key_pem(key), 0o600)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        entries = self._registry()
        entries.append({"serial": str(cert.serial_number), "role": role, "name": name,
                        "not_after": cert.not_valid_after_utc.isoformat(), "revoked_at": None})
        self._save_registry(entries)
        return cert_path, key_path

    # -- revoke ----------------------------------------------------------------------------------
    def revoke(self, *, role: str | None = None, name: str | None = None, serial: int | None = None) -> list[int]:
        """Revoke every valid certificate of node `role`/`name` (or the one `serial`); the serials revoked.

        The new CRL is written at once; nodes pick it up from the analyst within `crl_refresh_seconds`.
        """
        entries = self._registry()
        hits = [e for e in entries if e["revoked_at"] is None and (
            (serial is not None and int(str(e["serial"])) == serial)
            or (serial is None and e["name"] == name and (role is None or e["role"] == role)))]
        if not hits:
            what = f"serial {serial}" if serial is not None else f"{role or 'any role'}:{name}"
            raise BadRequest("not-issued", f"no valid certificate of {what} in {self.registry_file}")
        stamp = _now().isoformat()
        for entry in hits:
            entry["revoked_at"] = stamp
        self._save_registry(entries)
        self.write_crl()
        return [int(str(e["serial"])) for e in hits]

    def issued(self) -> list[dict[str, object]]:
        return self._registry()

    def write_crl(self) -> Path:
        """Sign a fresh CRL of every revoked certificate (the number goes up by one each time)."""
        ca_cert, ca_key = self._load()
        number = crl_number(self.crl_file.read_bytes()) + 1 if self.crl_file.exists() else 1
        now = _now()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject).last_update(now)
                   .next_update(now + datetime.timedelta(days=CRL_DAYS))
                   .add_extension(x509.CRLNumber(number), critical=False))
        for entry in self._registry():
            if entry["revoked_at"]:
                revoked_at = datetime.datetime.fromisoformat(str(entry["revoked_at"]))
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder().serial_number(int(str(entry["serial"])))
                    .revocation_date(revoked_at).build())
        crl = builder.sign(ca_key, hashes.SHA256())
        _write(self.crl_file, crl.public_bytes(serialization.Encoding.PEM))
        return self.crl_file


def crl_number(crl_pem: bytes) -> int:
    crl = x509.load_pem_x509_crl(crl_pem)
    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def check_crl(ca_pem: bytes, crl_pem: bytes) -> int:
    """The number of `crl_pem` when the CA signed it; raises BadRequest for anything else.

    A CRL is safe to take from anywhere (the analyst, a file copied by Ansible) once this passes.
    """
    try:
        ca = x509.load_pem_x509_certificate(ca_pem)
        crl = x509.load_pem_x509_crl(crl_pem)
    except ValueError as exc:
        raise BadRequest("bad-crl", f"not a PEM CRL: {exc}") from None
    public_key = ca.public_key()
    if crl.issuer != ca.subject or not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise BadRequest("bad-crl", "the CRL is not from this cluster's CA")
    try:
        if not crl.is_signature_valid(public_key):
            raise InvalidSignature
    except InvalidSignature:
        raise BadRequest("bad-crl", "the CRL's signature does not verify") from None
    return crl_number(crl_pem)


def take_crl(ca_file: Path, crl_file: Path, crl_pem: bytes) -> bool:
    """Replace `crl_file` with `crl_pem` when the CA signed it and it is newer; True when it changed."""
    number = check_crl(ca_file.read_bytes(), crl_pem)
    if crl_file.exists():
        try:
            if crl_number(crl_file.read_bytes()) >= number:
                return False
        except ValueError:
            pass  # an unreadable local CRL is replaced by a good one
    _write(crl_file, crl_pem)
    return True
