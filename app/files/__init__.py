"""Attachments: where files are kept (storage), what they are (sniff), how images
are previewed (thumbs), how their names are shown (names) and how a message
shows them (cards)."""
