"""The credentials sidecar: `serve`, `credential-process` and `check`, over rolesanywhere_protocol."""
