"""The RADIUS front door: UDP worker processes (server), packet checks on pyrad (packets) and the
translation of an Access-Request to the sign-in services (handler). Business rules live in
server.services.radius_access and server.services.radius_clients."""
