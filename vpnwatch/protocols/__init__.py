"""Sans-IO protocol state machines: bytes and a clock reading in, bytes and events out."""
