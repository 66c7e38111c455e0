"""A Shadowsocks server to probe: its cipher, its password, and its SIP003 plugin, if any.

The plugin is given as links give it (SIP002/SIP003): ``plugin`` names it (``obfs-local`` or
``simple-obfs``; ``v2ray-plugin``) and ``plugin_opts`` holds its ``;``-separated options
(``obfs=http;obfs-host=…``; ``tls;host=…;path=…``). They are checked here, once, so that a
probe never meets an option it cannot speak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator

from vpnwatch.targets.proxy import ProxyTarget

#: The AEAD methods :data:`vpnwatch.protocols.shadowsocks.aead.CIPHERS` speaks.
Method = Literal["chacha20-ietf-poly1305", "aes-256-gcm", "aes-128-gcm"]

#: The names links use for simple-obfs' client, and for v2ray-plugin.
OBFS_PLUGINS = frozenset({"obfs-local", "simple-obfs"})
V2RAY_PLUGINS = frozenset({"v2ray-plugin", "ss-v2ray-plugin"})
#: Defaults of the plugins' own clients.
OBFS_DEFAULT_HOST = "cloudfront.net"
V2RAY_DEFAULT_HOST = "cloudfront.com"


@dataclass(frozen=True, slots=True)
class PluginMode:
    """What a plugin's options ask for, in the terms the probe's layers need."""

    kind: Literal["obfs-http", "obfs-tls", "websocket", "websocket-tls"]
    host: str
    path: str = "/"
    #: v2ray-plugin's Mux.Cool, on unless ``mux=0`` (its own default).
    mux: bool = False


def parse_plugin_opts(opts: str) -> dict[str, str]:
    """``a=b;flag;c=d`` → {"a": "b", "flag": "", "c": "d"} (SIP003's option syntax)."""
    options: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in opts.split(";"))):
        key, _, value = item.partition("=")
        options[key.strip()] = value.strip()
    return options


def plugin_mode(plugin: str, opts: str) -> PluginMode | None:
    """The mode ``plugin`` with ``opts`` speaks; ValueError for what vpnwatch cannot speak."""
    if not plugin:
        return None
    options = parse_plugin_opts(opts)
    if plugin in OBFS_PLUGINS:
        obfs = options.get("obfs")
        if obfs not in ("http", "tls"):
            raise ValueError("plugin_opts: simple-obfs needs obfs=http or obfs=tls")
        host = options.get("obfs-host") or OBFS_DEFAULT_HOST
        obfs_kind: Literal["obfs-http", "obfs-tls"] = "obfs-http" if obfs == "http" else "obfs-tls"
        return PluginMode(obfs_kind, host, options.get("obfs-uri") or "/")
    if plugin in V2RAY_PLUGINS:
        mode = options.get("mode", "websocket")
        if mode != "websocket":
            raise ValueError(f"plugin_opts: v2ray-plugin mode={mode} is not spoken (websocket is)")
        tls = "tls" in options
        host = options.get("host") or V2RAY_DEFAULT_HOST
        mux = options.get("mux", "1") != "0"
        kind: Literal["websocket", "websocket-tls"] = "websocket-tls" if tls else "websocket"
        return PluginMode(kind, host, options.get("path") or "/", mux)
    raise ValueError(
        f"plugin {plugin!r} is not supported (obfs-local/simple-obfs and v2ray-plugin are)"
    )


class ShadowsocksTarget(ProxyTarget):
    """One Shadowsocks server (AEAD ciphers only: the stream ciphers are deprecated)."""

    protocol: Literal["shadowsocks"] = "shadowsocks"
    method: Method
    password: SecretStr
    plugin: Annotated[str, Field(max_length=64)] = ""
    plugin_opts: Annotated[str, Field(max_length=1024)] = ""
    #: PEM certificates v2ray-plugin's ``tls`` is verified against (system store when unset).
    ca: str | None = None

    @model_validator(mode="after")
    def _plugin_is_spoken(self) -> ShadowsocksTarget:
        plugin_mode(self.plugin, self.plugin_opts)
        return self

    @property
    def plugin_mode(self) -> PluginMode | None:
        return plugin_mode(self.plugin, self.plugin_opts)
