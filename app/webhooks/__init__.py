"""Outgoing webhooks: bots told of the messages that mention them.

urls checks a webhook URL and where it may lead (SSRF), queue keeps the
deliveries in the database, send makes one signed POST, worker runs them.
"""
