"""Importers: files users already hold (wg-quick .conf, .ovpn, bridge lines) to Target models."""
