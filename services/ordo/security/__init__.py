"""Access control for every surface: API keys, one policy table, the gRPC interceptor and the HTTP
dependency that both consult it, library (tenant) scoping, server-side path rules and TLS.

Nothing else in Ordo decides who may do what: servicers and routes ask ``current_principal()`` which
libraries the caller may see, and the policy table says which role each method needs.
"""
