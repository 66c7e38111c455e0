"""The AnyConnect conversation inside TLS: the XML login, ``CONNECT``, and a CSTP DPD exchange.

This machine sees only plaintext, so a transcript of a real server's plaintext replays byte for
byte (TLS's own randomness cannot be injected; :class:`~.client.AnyConnectClient` wraps this
machine in TLS). It follows the ``openconnect`` client:

1. ``POST`` a ``config-auth`` ``init`` to the URL's path, naming the group if one was given;
2. answer each form the server sends (username, then password, in ocserv's two rounds; a group
   list; hidden values), keeping the cookies it sets, until it answers ``complete``: the session
   cookie (``webvpn``, or the ASA's ``session-token``) proves the login (stage ``auth``);
3. ``CONNECT /CSCOSSLC/tunnel`` with that cookie; the server answers ``200 CONNECTED`` with its
   ``X-CSTP-*`` headers, and the stream then carries CSTP packets;
4. a DPD request that the server must answer (stage ``tunnel``), then a DISCONNECT saying the
   user left, which makes the server end the session and forget the cookie at once.

A form asking again for what was already given (ocserv's "Login failed", an ASA's error) or for
something the target does not hold (an OTP, a group it does not offer) is ``auth``, as it is for
``openconnect`` run without a terminal.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field
from enum import Enum, auto

import h11

from vpnwatch.printable import printable
from vpnwatch.protocols.anyconnect import configauth, cstp
from vpnwatch.protocols.anyconnect.configauth import ConfigAuthError, FormField, ServerMessage
from vpnwatch.protocols.machine import Failed, MachineBase, StageCompleted
from vpnwatch.result import Failure

#: The openconnect release whose requests the probe makes (servers tell clients apart by it).
CLIENT_VERSION = "v9.01"
#: Where the tunnel is asked for: the path ocserv and Cisco's gateways answer.
TUNNEL_PATH = "/CSCOSSLC/tunnel"
#: The cookie that carries the session once the login is complete.
SESSION_COOKIE = "webvpn"
#: Forms answered (and redirects followed) before a server that keeps asking is given up on.
MAX_ROUNDS = 8
#: The largest HTTP head accepted from the server.
MAX_HEAD = 16 * 1024
#: The group select every AnyConnect server names so; its choice goes back as ``group-select``.
GROUP_FIELD = "group_list"
#: The longest detail a failure carries: it quotes the server (its message, labels, groups).
MAX_DETAIL = 300


@dataclass(frozen=True, slots=True)
class Login:
    """What the probe says to the server: where, as whom, in which group."""

    #: The host and port as the URL gives them (the ``Host`` header and ``group-access``).
    host: str
    port: int
    path: str = "/"
    group: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    user_agent: str = f"Open AnyConnect VPN Agent {CLIENT_VERSION}"

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 443 else f"{host}:{self.port}"


class _Phase(Enum):
    LOGIN = auto()
    CONNECT = auto()
    TUNNEL = auto()


class AnyConnectSession(MachineBase):
    """Login, tunnel and DPD over a plaintext stream (the inside of the TLS session)."""

    stages: tuple[str, ...] = ("auth", "tunnel")

    def __init__(self, login: Login) -> None:
        super().__init__()
        self._login = login
        self._http = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self._phase = _Phase.LOGIN
        self._cookies: dict[str, str] = {}
        self._response: h11.Response | None = None
        self._body = bytearray()
        self._rounds = 0
        self._sent: set[str] = set()
        self._group = login.group
        self._tunnel = cstp.CstpReader()
        self._address = ""

    # -- the machine contract ----------------------------------------------------------------

    def start(self, now: float) -> None:
        super().start(now)
        self._post(self._login.path, self._init_document(self._login.path))

    def receive(self, data: bytes, now: float) -> None:
        if self.finished:
            return
        if not data:
            self._fail(Failure.EOF, f"the server closed the connection {self._where()}")
        elif self._phase is _Phase.TUNNEL:
            self._tunnel_data(data)
        else:
            self._http_data(data)

    def timed_out(self) -> Failed:
        return Failed(Failure.TIMEOUT, f"no answer {self._where()}")

    def _fail(self, failure: Failure, detail: str) -> None:
        """Details quote what the server said: one printable line of bounded length."""
        line = printable(detail)
        super()._fail(failure, line if len(line) <= MAX_DETAIL else line[: MAX_DETAIL - 1] + "…")

    def _where(self) -> str:
        return {
            _Phase.LOGIN: "during the login",
            _Phase.CONNECT: "to CONNECT",
            _Phase.TUNNEL: "to the DPD request in the tunnel",
        }[self._phase]

    # -- HTTP ----------------------------------------------------------------------------------

    def _init_document(self, path: str) -> bytes:
        url = f"https://{self._login.authority}{path}"
        return configauth.init_request(CLIENT_VERSION, url, self._group)

    def _headers(self) -> list[tuple[str, str]]:
        headers = [("Host", self._login.authority), ("User-Agent", self._login.user_agent)]
        if self._cookies:
            cookies = "; ".join(f"{name}={value}" for name, value in self._cookies.items())
            headers.append(("Cookie", cookies))
        return headers

    def _post(self, path: str, document: bytes) -> None:
        headers = [
            *self._headers(),
            ("Accept", "*/*"),
            ("X-Transcend-Version", "1"),
            ("X-Aggregate-Auth", "1"),
            ("Content-Type", "application/xml; charset=utf-8"),
            ("Content-Length", str(len(document))),
        ]
        self._request(h11.Request(method="POST", target=path, headers=headers), document)

    def _connect(self, cookie: str) -> None:
        self._cookies = {SESSION_COOKIE: cookie}
        headers = [
            *self._headers(),
            ("X-CSTP-Version", "1"),
            ("X-CSTP-Hostname", "vpnwatch"),
            ("X-CSTP-Base-MTU", "1500"),
            ("X-CSTP-Address-Type", "IPv6,IPv4"),
            ("X-CSTP-Full-IPv6-Capability", "true"),
        ]
        self._phase = _Phase.CONNECT
        self._request(h11.Request(method="CONNECT", target=TUNNEL_PATH, headers=headers), b"")

    def _request(self, request: h11.Request, body: bytes) -> None:
        if self._http.our_state is h11.DONE and self._http.their_state is h11.DONE:
            self._http.start_next_cycle()
        if self._http.our_state is not h11.IDLE:
            self._fail(Failure.PROTOCOL, "the server ended the HTTP connection mid-login")
            return
        self._response, self._body = None, bytearray()
        out = self._http.send(request) or b""
        if body:
            out += self._http.send(h11.Data(data=body)) or b""
        out += self._http.send(h11.EndOfMessage()) or b""
        self._send(out)

    def _http_data(self, data: bytes) -> None:
        try:
            self._http.receive_data(data)
            while not self.finished:
                event = self._http.next_event()
                if event is h11.NEED_DATA:
                    return
                if isinstance(event, h11.Response):
                    self._response = event
                    self._keep_cookies(event)
                    if self._phase is _Phase.CONNECT and 200 <= event.status_code < 300:
                        self._tunnel_up(event)
                        return
                elif isinstance(event, h11.Data):
                    self._body += event.data
                    if len(self._body) > configauth.MAX_DOCUMENT:
                        self._fail(Failure.PROTOCOL, "the server's answer is too long")
                elif isinstance(event, h11.EndOfMessage):
                    self._answered()
                elif isinstance(event, h11.ConnectionClosed):
                    self._fail(Failure.EOF, f"the server closed the connection {self._where()}")
                elif event is h11.PAUSED:
                    return  # nothing more until our next request
                # An InformationalResponse (100 Continue) asks nothing of us.
        except h11.RemoteProtocolError as exc:
            self._fail(Failure.PROTOCOL, f"the server's HTTP is malformed: {exc}")

    def _keep_cookies(self, response: h11.Response) -> None:
        for name, value in response.headers:
            if name != b"set-cookie":
                continue
            pair, _, attributes = value.decode("latin-1").partition(";")
            key, _, cookie = pair.strip().partition("=")
            if cookie and not _expired(attributes):
                self._cookies[key] = cookie
            else:
                self._cookies.pop(key, None)

    def _answered(self) -> None:
        response = self._response
        assert response is not None  # h11 gives a Response before any EndOfMessage
        status = response.status_code
        if self._phase is _Phase.CONNECT:
            self._connect_refused(response)
        elif status == 200:
            self._login_answer(bytes(self._body))
        elif status in (301, 302, 303, 307, 308):
            self._redirected(response)
        elif status in (401, 403):
            self._fail(Failure.AUTH, f"the server refused the login: {_status_line(response)}")
        else:
            self._fail(Failure.PROTOCOL, f"the server answered the login {_status_line(response)}")

    def _redirected(self, response: h11.Response) -> None:
        location = _header(response, b"location")
        prefix = f"https://{self._login.authority}"
        path = location.removeprefix(prefix) if location.startswith(prefix) else location
        if not path.startswith("/"):
            self._fail(Failure.PROTOCOL, "the server redirected the login to another server")
        elif self._next_round():
            self._post(path, self._init_document(path))

    def _next_round(self) -> bool:
        self._rounds += 1
        if self._rounds > MAX_ROUNDS:
            self._fail(Failure.PROTOCOL, f"the login did not end after {MAX_ROUNDS} rounds")
        return not self.finished

    # -- the login -----------------------------------------------------------------------------

    def _login_answer(self, body: bytes) -> None:
        try:
            message = configauth.parse_server_message(body)
        except ConfigAuthError as exc:
            self._fail(Failure.PROTOCOL, str(exc))
            return
        if message.kind == "complete":
            cookie = message.session_token or self._cookies.get(SESSION_COOKIE)
            if not cookie:
                self._fail(Failure.PROTOCOL, "the login completed without a session cookie")
                return
            self._emit(StageCompleted("auth"))
            self._connect(cookie)
        elif message.kind == "auth-request" and message.fields:
            answers = self._fill(message)
            if answers is not None and self._next_round():
                document = configauth.auth_reply(
                    CLIENT_VERSION, answers, self._group, message.opaque
                )
                self._post(message.action or self._login.path, document)
        else:
            said = f": {message.message}" if message.message else ""
            self._fail(Failure.AUTH, f"the server ended the login ({message.kind}){said}")

    def _fill(self, message: ServerMessage) -> dict[str, str] | None:
        """The answers to a form, or None once it asked for what cannot be given (failed)."""
        answers: dict[str, str] = {}
        asked: set[str] = set()
        for form_field in message.fields:
            if form_field.kind == "hidden":
                answers[form_field.name] = form_field.value
            elif form_field.kind == "select":
                choice = self._choose(form_field, message)
                if choice is None:
                    return None
                if form_field.name != GROUP_FIELD:
                    answers[form_field.name] = choice
            else:
                kind = "password" if form_field.kind == "password" else form_field.name
                value = {"username": self._login.username, "password": self._login.password}
                given = value.get(kind)
                if given is None or kind in self._sent:
                    self._refused(message, form_field, again=kind in self._sent)
                    return None
                answers[form_field.name] = given
                asked.add(kind)
        self._sent |= asked
        return answers

    def _choose(self, select: FormField, message: ServerMessage) -> str | None:
        values = [value for value, _ in select.options]
        if not values:
            self._fail(Failure.PROTOCOL, f"the form's {select.name!r} list is empty")
            return None
        if select.name != GROUP_FIELD:
            return values[0]
        if self._group is None:
            if len(values) > 1:
                # openconnect without a terminal cannot choose either, and fails the same way.
                offered = ", ".join(label or value for value, label in select.options)
                self._fail(Failure.AUTH, f"the server asks to choose a group ({offered})")
                return None
            self._group = values[0]
            return self._group
        for value, label in select.options:
            if self._group in (value, label):
                self._group = value
                return value
        offered = ", ".join(values)
        self._fail(Failure.AUTH, f"the server does not offer group {self._group!r} ({offered})")
        return None

    def _refused(self, message: ServerMessage, form_field: FormField, *, again: bool) -> None:
        what = form_field.label.rstrip(":") or form_field.name
        said = f": {message.message}" if message.message else ""
        if again:
            self._fail(Failure.AUTH, f"the server asked for the {what.lower()} again{said}")
        else:
            self._fail(
                Failure.AUTH, f"the server asks for {what!r}, which the target does not give"
            )

    # -- the tunnel ----------------------------------------------------------------------------

    def _connect_refused(self, response: h11.Response) -> None:
        if response.status_code in (401, 403):
            detail = f"the server refused the session cookie: {_status_line(response)}"
            self._fail(Failure.AUTH, detail)
        else:
            self._fail(Failure.PROTOCOL, f"the server answered CONNECT {_status_line(response)}")

    def _tunnel_up(self, response: h11.Response) -> None:
        self._phase = _Phase.TUNNEL
        self._address = _header(response, b"x-cstp-address")
        self._send(cstp.encode(cstp.PacketType.DPD_REQUEST))
        trailing, _ = self._http.trailing_data
        if trailing:
            self._tunnel_data(trailing)

    def _tunnel_data(self, data: bytes) -> None:
        try:
            packets = self._tunnel.feed(data)
        except cstp.CstpError as exc:
            self._fail(Failure.PROTOCOL, str(exc))
            return
        for kind, payload in packets:
            if self.finished:
                return
            if kind == cstp.PacketType.DPD_RESPONSE:
                self._emit(StageCompleted("tunnel"))
                self._send(cstp.encode(cstp.PacketType.DISCONNECT, cstp.USER_DISCONNECT))
                address = f", address {printable(self._address[:64])}" if self._address else ""
                self._complete(f"CSTP tunnel up{address}, DPD answered")
            elif kind == cstp.PacketType.DPD_REQUEST:
                self._send(cstp.encode(cstp.PacketType.DPD_RESPONSE, payload))
            elif kind in (cstp.PacketType.DISCONNECT, cstp.PacketType.TERMINATE):
                self._fail(Failure.PROTOCOL, "the server ended the tunnel before answering DPD")


def _header(response: h11.Response, name: bytes) -> str:
    for key, value in response.headers:
        if key == name:
            return value.decode("latin-1")
    return ""


def _status_line(response: h11.Response) -> str:
    reason = response.reason.decode("latin-1", "replace")
    return f"HTTP {response.status_code} {reason}".rstrip()


def _expired(attributes: str) -> bool:
    """True when a Set-Cookie's attributes delete it (an expiry in the past, Max-Age 0)."""
    for attribute in attributes.split(";"):
        key, _, value = attribute.strip().partition("=")
        key = key.lower()
        if key == "max-age" and value.strip().lstrip("-").isdigit():
            return int(value) <= 0
        if key == "expires":
            when = email.utils.parsedate_tz(value)
            # The servers delete with dates in 1970; anything before 2000 is a deletion.
            return when is not None and when[0] < 2000
    return False
