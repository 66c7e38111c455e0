"""The XML ``config-auth`` documents of AnyConnect's login: what the client posts, what it reads.

The client opens with ``type="init"``; the server answers with an ``auth-request`` holding a form
(username, password, a group to choose, hidden values) or with ``complete`` once the login is
done. The client answers each form with an ``auth-reply`` and echoes the server's ``opaque``
element back (a Cisco ASA keeps its login state there; ocserv keeps it in a cookie).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

#: A login document larger than this is not a login document.
MAX_DOCUMENT = 64 * 1024
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


class ConfigAuthError(ValueError):
    """The server's answer is not a config-auth document this client understands."""


@dataclass(frozen=True, slots=True)
class FormField:
    """One input of a login form: ``kind`` is the input's type, or ``select``.

    A select's ``options`` are (value, label) pairs: users name a group by either.
    """

    name: str
    kind: str
    label: str = ""
    value: str = ""
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ServerMessage:
    """What a config-auth document from the server says."""

    #: ``auth-request`` (a form to fill), ``complete`` (logged in), or whatever else it said.
    kind: str
    #: The ``auth`` element's id: ``main``, ``success``, ``failure``, ``error``, ...
    auth_id: str = ""
    #: The server's words to the user (the message and any error), one line.
    message: str = ""
    action: str = ""
    fields: tuple[FormField, ...] = ()
    session_token: str | None = None
    #: The ``opaque`` element, serialised, to be echoed back unchanged.
    opaque: bytes | None = field(default=None, repr=False)


def _document(kind: str, version: str, children: list[ET.Element]) -> bytes:
    root = ET.Element("config-auth", {"client": "vpn", "type": kind, "aggregate-auth-version": "2"})
    ET.SubElement(root, "version", {"who": "vpn"}).text = version
    ET.SubElement(root, "device-id").text = "linux-64"
    root.extend(children)
    body: bytes = ET.tostring(root, encoding="utf-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _text(tag: str, value: str) -> ET.Element:
    element = ET.Element(tag)
    element.text = value
    return element


def init_request(version: str, group_access: str, group: str | None) -> bytes:
    """The first document: who we are, the URL we were given, and the group if one was asked."""
    children = [_text("group-access", group_access)]
    if group is not None:
        children.append(_text("group-select", group))
    return _document("init", version, children)


def auth_reply(
    version: str, answers: dict[str, str], group: str | None, opaque: bytes | None
) -> bytes:
    """The answer to one form: each field's name and value, the group, the server's opaque."""
    children = []
    if opaque is not None:
        children.append(parse_xml(opaque))
    auth = ET.Element("auth")
    auth.extend(_text(name, value) for name, value in answers.items())
    children.append(auth)
    if group is not None:
        children.append(_text("group-select", group))
    return _document("auth-reply", version, children)


def parse_xml(data: bytes) -> ET.Element:
    """An XML document from a server or a user's file, with no DTD (so no entity expansion) and
    at most :data:`MAX_DOCUMENT` bytes; raises ConfigAuthError."""
    if len(data) > MAX_DOCUMENT:
        raise ConfigAuthError(f"the document is {len(data)} bytes long")
    if _DTD.search(data):
        raise ConfigAuthError("the document declares a DTD")
    try:
        return ET.fromstring(data)  # noqa: S314 - no DTD (checked above), bounded size
    except ET.ParseError as exc:
        raise ConfigAuthError(f"the document is not XML ({exc})") from None


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def parse_server_message(data: bytes) -> ServerMessage:
    """Read a config-auth document; raises ConfigAuthError for anything else."""
    root = parse_xml(data)
    if root.tag != "config-auth":
        raise ConfigAuthError(f"the login answer is <{root.tag[:40]}>, not <config-auth>")
    auth = root.find("auth")
    opaque = root.find("opaque")
    token = root.find("session-token")
    words = []
    fields: list[FormField] = []
    action = ""
    if auth is not None:
        words = [_one_line(element.text) for element in auth.iter() if element.tag in (
            "message", "error", "banner")]  # fmt: skip
        form = auth.find("form")
        if form is not None:
            action = form.get("action", "")
            fields = [_field(element) for element in form if element.tag in ("input", "select")]
    return ServerMessage(
        kind=root.get("type", ""),
        auth_id="" if auth is None else auth.get("id", ""),
        message=" ".join(word for word in words if word),
        action=action,
        fields=tuple(fields),
        session_token=None if token is None else (token.text or "").strip(),
        opaque=None if opaque is None else ET.tostring(opaque, encoding="utf-8"),
    )


def _field(element: ET.Element) -> FormField:
    name = element.get("name", "")
    label = element.get("label", "")
    if element.tag == "select":
        options = tuple(
            (option.get("value") or _one_line(option.text), _one_line(option.text))
            for option in element.iter("option")
        )
        return FormField(name, "select", label, options=options)
    return FormField(name, element.get("type", "text"), label, element.get("value", ""))
