"""What the operator relies on of the sidecar, declared once: the endpoint's path and the names of the
files it writes. The operator imports these (and the settings' defaults) instead of repeating them."""

#: Path of the container credentials endpoint (GET, with the token as Authorization).
CREDENTIALS_PATH = "/v1/credentials"
#: The shared credentials file (INI, profile default), for tools and scripts.
CREDENTIALS_FILE = "credentials"
#: The credential-process JSON the sidecar's probes and restarts read.
CREDENTIALS_JSON_FILE = "credentials.json"
#: The endpoint's authorization token, shared with the app containers.
TOKEN_FILE = "token"
