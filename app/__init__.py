"""talkroom: a real-time room chat for the browser."""
