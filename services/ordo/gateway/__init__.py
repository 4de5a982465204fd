"""The HTTP gateway: REST and server-sent events in front of Ordo's gRPC services, plus the web UI.

It holds no logic of its own: every route translates one HTTP request into calls on ``OrdoClient``'s stubs
and the answer back, so the gRPC contracts stay the single source of truth."""
