"""What the operator relies on of the sidecar, declared once: the endpoints' paths and the names of the
files it writes. The operator imports these (and the settings' defaults) instead of repeating them."""

#: Path of the container credentials endpoint (GET, with the token as Authorization); on the loopback only.
CREDENTIALS_PATH = "/v1/credentials"
#: Liveness: 200 while the process serves.
HEALTHZ_PATH = "/healthz"
#: Readiness: 200 while the held credentials stay valid for at least files.MIN_VALIDITY (the probes' path).
READYZ_PATH = "/readyz"
#: Prometheus text exposition of the sidecar's metrics (no credential, token, key or ARN in it).
METRICS_PATH = "/metrics"
#: The shared credentials file (INI, profile default), for tools and scripts.
CREDENTIALS_FILE = "credentials"
#: The credential-process JSON that `check` and a restarted sidecar read.
CREDENTIALS_JSON_FILE = "credentials.json"
#: The endpoint's authorization token, shared with the app containers.
TOKEN_FILE = "token"
