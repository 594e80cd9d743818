"""One router per resource; each is built from the ``ApiContext`` and the auth dependency."""
