#!/usr/bin/env python3
"""Starts localstripe (the Stripe fake scripts/dev, scripts/test and scripts/bench run) with
one fix of our own.

localstripe 1.15.10 sends each webhook by iterating over its registered endpoints after a
one-second sleep; an endpoint registered meanwhile (`POST /_config/webhooks/{id}`, which every
payments test does for its own receiver) changes that dict during the iteration, the
delivery task dies with "dictionary changed size during iteration", and the event is never
delivered to anyone. Iterating over a snapshot instead is what the fake should do; real
Stripe retries, which this fake does not.

Arguments are localstripe's own (`--port`, `--from-scratch`).
"""

import localstripe.webhooks as webhooks
from localstripe.server import start


class _SnapshotValues(dict):
    """The registered endpoints; `values()` returns a snapshot, safe to iterate while
    another request registers an endpoint."""

    def values(self):  # type: ignore[override]
        return list(super().values())


webhooks._webhooks = _SnapshotValues(webhooks._webhooks)

if __name__ == "__main__":
    start()
