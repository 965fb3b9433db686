"""Sessions, instances, terminals (API, websocket, tasks); imports sandbox.wire, config, labs.sessions, labs.openapi."""
