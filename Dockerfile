# Two images from one build: `--target sidecar` is the credentials sidecar every injected pod pulls
# (`rolesanywhere-sidecar` and only its dependencies: cryptography, httpx and theirs); the default, last target
# `operator` holds the operator and the sidecar (`rolesanywhere-operator` and `rolesanywhere-sidecar` on PATH).
# The build stage makes the project's wheel; the final stages install it with no compiler, no pip cache and no
# build tools. Every third-party file comes from a lock (make lock) and is checked against its sha256, so a
# changed or newer upstream release cannot slip into an image; nothing is resolved at build time.
# The locks are resolved for this Python version (hack/lock.sh reads it from this line).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md requirements-build.lock ./
COPY operator ./operator
COPY sidecar ./sidecar
# The build backend from its lock, so the wheel is built without fetching an unchecked setuptools.
RUN pip install --no-cache-dir --require-hashes --no-deps --only-binary :all: -r requirements-build.lock \
    && pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

# What both images share: the environment and the user.
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A numeric non-root user, so `runAsNonRoot` can be checked without a passwd lookup; it still gets a
# passwd entry, because kopf names its peering identity after getpass.getuser(), which raises
# KeyError for a uid without one (the operator crashed at start in a real pod).
RUN echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'nonroot:x:65532:' >> /etc/group

# The sidecar: one distribution holds both commands (so `pip install rolesanywhere-operator` stays one
# install for users), and its metadata requires the operator's kopf, kubernetes, aiohttp and pyyaml too. So
# the wheel goes in with --no-deps over requirements-sidecar.lock (pyproject's
# [tool.rolesanywhere.sidecar-image]): the operator's modules are present but unusable here, and the sidecar
# never imports them (tests/unit/test_layers.py). pip check would name the operator's requirements missing,
# so it is held to every other distribution, and importing the sidecar's `serve` proves its own are there.
FROM runtime AS sidecar
RUN --mount=type=bind,source=requirements-sidecar.lock,target=/tmp/requirements-sidecar.lock \
    --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --require-hashes --no-deps --only-binary :all: -r /tmp/requirements-sidecar.lock \
    && pip install --no-cache-dir --no-deps --no-index /wheels/*.whl \
    && { pip check || true; } | { ! grep -v -e '^rolesanywhere-operator ' -e '^No broken requirements found'; } \
    && python -c 'import rolesanywhere_sidecar.serve' \
    && pip uninstall -y pip setuptools wheel
USER 65532:65532
ENTRYPOINT ["rolesanywhere-sidecar"]
CMD ["--help"]

# The operator (and the sidecar): the dependencies exactly as locked, as wheels only (nothing compiles here);
# the project with --no-deps, so nothing unlocked comes in; pip check fails the build when the lock misses a
# dependency.
FROM runtime AS operator
RUN --mount=type=bind,source=requirements.lock,target=/tmp/requirements.lock \
    --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --require-hashes --no-deps --only-binary :all: -r /tmp/requirements.lock \
    && pip install --no-cache-dir --no-deps --no-index /wheels/*.whl \
    && pip check \
    && pip uninstall -y pip setuptools wheel
USER 65532:65532
ENTRYPOINT ["rolesanywhere-sidecar"]
CMD ["--help"]
