"""Transcripts captured from the real peers, replayed by the protocol tests without a network."""
