"""The HTTP plumbing the front doors share (server.api, server.web, server.oidc): operations and their
contract, request context, authentication, problem+json, rate limits, bodies and answers."""
