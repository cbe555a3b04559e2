"""The HTTP API and web page (`ragmini serve`)."""
