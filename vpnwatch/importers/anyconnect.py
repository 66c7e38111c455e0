"""AnyConnect client profiles (``.xml``) → one AnyConnect target per SSL server entry.

The profile is what an AnyConnect-compatible deployment hands every user: Cisco ASAs and ocserv
(``user-profile``) push it to the client at each login, and administrators ship it with the
client. Its ``ServerList`` names the gateways a company runs — exactly the fleet a monitor must
watch — and the AnyConnect client, ``openconnect`` and NetworkManager users all have it, whereas
NetworkManager's connection files and openconnect's command lines name one gateway each and live
on one desktop. A ``HostEntry``::

    <HostEntry>
      <HostName>Frankfurt</HostName>
      <HostAddress>vpn-fra.example.net</HostAddress>   <!-- host[:port][/path] -->
      <UserGroup>engineering</UserGroup>               <!-- the group URL's path -->
    </HostEntry>

becomes the target ``https://vpn-fra.example.net/engineering``. Entries whose
``PrimaryProtocol`` is ``IPsec`` are IKEv2 gateways, not this probe's: they are listed as
skipped (``config check`` shows them), never dropped silently. A
profile holds no credentials: give them with ``--auth-user-pass FILE`` or as overrides of a
``from:`` entry (``username``, ``password_file``, ``cert_file``, ``key_file``, ``ca_file``,
``servercert``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from pydantic import ValidationError

from vpnwatch.errors import ConfigError, describe_validation_error
from vpnwatch.files import UnreadableFile, read_text
from vpnwatch.importers.imported import Imported, Skipped
from vpnwatch.printable import is_printable_name
from vpnwatch.protocols.anyconnect.configauth import ConfigAuthError, parse_xml
from vpnwatch.targets.anyconnect import AnyConnectTarget, split_url


def _local(tag: str) -> str:
    """A tag without its namespace: profiles carry ``xmlns`` or not."""
    return tag.rpartition("}")[2]


def _child_text(element: ET.Element, name: str) -> str:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return ""


def load_anyconnect_profile(path: Path, *, auth_user_pass: Path | None = None) -> Imported:
    """Every SSL gateway in the profile at ``path`` (IPsec ones skipped); ConfigError naming the
    entry for anything malformed."""
    try:
        text = read_text(path)
    except UnreadableFile as exc:
        raise ConfigError(f"cannot read the file: {exc}", source=path) from None
    try:
        root = parse_xml(text.encode())
    except ConfigAuthError as exc:
        raise ConfigError(str(exc), source=path) from None
    if _local(root.tag) != "AnyConnectProfile":
        raise ConfigError(f"is <{_local(root.tag)[:40]}>, not an AnyConnect profile", source=path)
    entries = [
        element
        for server_list in root
        if _local(server_list.tag) == "ServerList"
        for element in server_list
        if _local(element.tag) == "HostEntry"
    ]
    ssl_entries = []
    skipped = []
    for number, entry in enumerate(entries, start=1):
        if _child_text(entry, "PrimaryProtocol").lower() == "ipsec":
            reason = "the AnyConnect probe speaks the SSL (CSTP) protocol, not IPsec/IKEv2"
            skipped.append(Skipped(str(path), f"HostEntry {number}", "IPsec gateway", reason))
        else:
            ssl_entries.append((number, entry))
    if not ssl_entries:
        raise ConfigError("its ServerList has no SSL HostEntry: nothing to probe", source=path)
    targets: list[AnyConnectTarget] = []
    names: dict[str, int] = {}
    for number, entry in ssl_entries:
        where = f"HostEntry {number}"
        target = _target(path, entry, where, len(ssl_entries) > 1, auth_user_pass)
        if target.name in names:
            message = f"names the same server as HostEntry {names[target.name]}"
            raise ConfigError(message, source=path, where=where)
        names[target.name] = number
        targets.append(target)
    return Imported(targets, skipped)


def _target(
    path: Path, entry: ET.Element, where: str, several: bool, auth_user_pass: Path | None
) -> AnyConnectTarget:
    address = _child_text(entry, "HostAddress") or _child_text(entry, "HostName")
    if not address:
        raise ConfigError("has neither HostAddress nor HostName", source=path, where=where)
    try:
        fields = split_url(address)
    except ValueError as exc:
        raise ConfigError(f"HostAddress: {exc}", source=path, where=where) from None
    group = _child_text(entry, "UserGroup").strip("/")
    if group and fields["path"] == "/":
        fields["path"] = f"/{group}"
    label = _child_text(entry, "HostName")
    if not is_printable_name(label):
        label = address
    fields["name"] = f"{path.stem}/{label}" if several else path.stem
    if auth_user_pass is not None:
        fields["auth_user_pass"] = auth_user_pass
    try:
        return AnyConnectTarget.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc), source=path, where=where) from None
